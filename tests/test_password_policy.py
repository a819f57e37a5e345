"""One password policy wherever a password is set — registration, the reset link,
« Mon compte » and the admin's User form: 12 to 128 characters, and never a common or
breached password nor a variant of one (checked offline). The refusal is a French message
on the password field; the password stays unchanged."""
from __future__ import annotations

import datetime as dt

import pytest
from flask import g
from sqlalchemy import select

from backoffice import passwords
from backoffice.models import StaffRole, StructureKind, Token, User
from backoffice.services import accounts as service
from tests import factories
from tests.conftest import csrf_token, login

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
STRONG = "trois chevaux dans la lande"
TOO_LONG = ("Une phrase assez longue pour un mot de passe, " * 3)[:129]
COMMON_MESSAGE = "Ce mot de passe est trop courant ou trop simple"
LONG_MESSAGE = "Le mot de passe compte 128 caractères au plus."

# 12 characters or more each: only the list and the estimation can refuse them.
COMMON = [
    "password1234", "azertyuiop12", "motdepasse123", "123456789012", "qwertyuiopas",
    "soleil123456", "P@ssw0rd1234", "1q2w3e4r5t6y", "abcdefghijkl", "1qaz2wsx3edc",
    "aqwzsxedcrfv", "baseball1234", "abc123abc123", "michael12345", "zaq1xsw2cde3",
    "shadow123456", "123456abcdef", "loveme123456", "Motdepasse1!", "Azerty123456!",
    "Bonjour2024!!", "marseille1234", "football2024!", "chocolat1234", "princesse123",
    "111111111111",
]


def test_the_fixed_list_has_26_common_passwords_of_12_characters_or_more():
    assert len(set(COMMON)) == 26 and min(map(len, COMMON)) >= 12
    assert len(TOO_LONG) == passwords.MAX_LENGTH + 1


@pytest.mark.parametrize("password", COMMON)
def test_policy_refuses_common_passwords(password):
    assert passwords.check_password_policy(password).startswith(COMMON_MESSAGE)


def test_policy_length_bounds_and_the_user_own_names():
    assert passwords.check_password_policy("Court-1") == passwords.TOO_SHORT
    assert passwords.check_password_policy(TOO_LONG) == LONG_MESSAGE
    longest = ("Vingt mille lieues sous les mers, " * 4)[:128]
    assert len(longest) == 128 and passwords.check_password_policy(longest) is None
    assert passwords.check_password_policy(longest + "!") == LONG_MESSAGE  # 129
    assert passwords.check_password_policy(STRONG) is None
    assert passwords.check_password_policy("claudinegirardot", user_inputs=(
        "claudine.girardot@exemple.fr", "Girardot", "Claudine")) is not None


def _fresh_browser(app):
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    return app.test_client()


# -- each place where a password is set: (password) → (page text, was it accepted) ---------
def _registration(app, db):
    structure = factories.create_structure(kind=StructureKind.PRESCRIPTEUR,
                                           prescriber_type="mission_locale")
    db.session.commit()
    url = f"/inscription?structure_id={structure.id}"
    counter = iter(range(1000))

    def attempt(password):
        email = f"claire.martin{next(counter)}@ml.fr"
        browser = _fresh_browser(app)
        page = browser.get(url)
        response = browser.post(url, data={
            "csrf_token": csrf_token(page.text), "structure_recherche": "Mission locale",
            "kind": "prescripteur", "prescriber_type": "mission_locale", "email": email,
            "mot_de_passe": password, "mot_de_passe_confirmation": password,
            "nom": "Martin", "prenom": "Claire", "consentement": "oui"})
        created = db.session.scalar(select(User).where(User.email == email)) is not None
        return response.text, created
    return attempt


def _reset(app, db):
    user = factories.create_user()
    db.session.commit()

    def attempt(password):
        token, secret = Token.issue(purpose="reinitialisation",
                                    lifetime=dt.timedelta(hours=1), user=user)
        db.session.add(token)
        db.session.commit()
        before = user.password_hash
        browser = _fresh_browser(app)
        page = browser.get(f"/reinitialisation/{secret}")
        response = browser.post(f"/reinitialisation/{secret}", data={
            "password": password, "confirmation": password,
            "csrf_token": csrf_token(page.text)})
        db.session.refresh(user)
        return response.text, user.password_hash != before
    return attempt


def _my_account(app, db):
    user = factories.create_member()
    db.session.commit()
    browser = _fresh_browser(app)
    assert login(browser, user).status_code == 302

    def attempt(password):
        before = user.password_hash
        page = browser.get("/mon-compte")
        response = browser.post("/mon-compte", data={
            "action": "mot_de_passe", "mdp-csrf_token": csrf_token(page.text),
            "mdp-current": factories.PASSWORD, "mdp-password": password,
            "mdp-confirmation": password}, follow_redirects=True)
        db.session.refresh(user)
        return response.text, user.password_hash != before
    return attempt


def _admin_new_user(app, db):
    admin = factories.create_staff(StaffRole.ADMIN)
    db.session.commit()
    browser = _fresh_browser(app)
    assert login(browser, admin).status_code == 302
    counter = iter(range(1000))

    def attempt(password):
        email = f"nouveau{next(counter)}@exemple.fr"
        page = browser.get("/admin/user/new/")
        response = browser.post("/admin/user/new/", data={
            "csrf_token": csrf_token(page.text), "email": email, "nom": "Durand",
            "prenom": "Paul", "staff_role": "", "new_password": password},
            follow_redirects=True)
        created = db.session.scalar(select(User).where(User.email == email))
        return response.text, created is not None and created.password_hash is not None
    return attempt


PLACES = {"inscription": _registration, "reinitialisation": _reset,
          "mon_compte": _my_account, "admin_utilisateur": _admin_new_user}


@pytest.mark.parametrize("place", PLACES)
def test_every_place_refuses_common_and_too_long_passwords_and_accepts_a_strong_one(
        app, db, place):
    attempt = PLACES[place](app, db)
    for password in COMMON:
        text, accepted = attempt(password)
        assert not accepted, (place, password)
        assert COMMON_MESSAGE in text, (place, password)
    text, accepted = attempt(TOO_LONG)
    assert not accepted and LONG_MESSAGE in text
    text, accepted = attempt(STRONG)
    assert accepted, text


def test_services_apply_the_policy_with_the_account_names(db):
    user = factories.create_user(email="claudine.girardot@exemple.fr", nom="Girardot",
                                 prenom="Claudine")
    with pytest.raises(service.AccountError) as error:
        service.set_password(user, "ClaudineGirardot")
    assert COMMON_MESSAGE in error.value.message
    with pytest.raises(service.AccountError):
        service.register(email="x@exemple.fr", password="motdepasse123", nom="X", prenom="Y",
                         fonction=None, telephone=None)
