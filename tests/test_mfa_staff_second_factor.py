"""Staff accounts (admin, moderateur, responsable_regles) give a TOTP code after their
password before any page: enrolment with a QR code and recovery codes the first time, a
code that cannot be replayed, a few wrong codes then back to the password. Other users
are not asked."""
from __future__ import annotations

import datetime as dt
import re

import pyotp
import pytest
from flask import g
from sqlalchemy import select

from backoffice import clock
from backoffice.models import MfaRecoveryCode, Membership, StaffRole, User, UserSession
from backoffice.services import mfa
from tests import factories
from tests.conftest import csrf_token, login

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
CODE_PAGE = "/connexion/code"
ENROL_PAGE = "/connexion/double-authentification"


@pytest.fixture(autouse=True)
def _fixed_clock():
    clock.set_now(T0)


def _forget_cached_user() -> None:
    """Each request judged on its own cookie (the test's app context is shared)."""
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)


def _get(client, url):
    _forget_cached_user()
    return client.get(url)


def _password_only(client, user):
    response = login(client, user, second_factor=False)
    assert response.status_code == 302
    return response


def _post_code(client, code: str, page_url: str = CODE_PAGE):
    page = _get(client, page_url)
    return client.post(page_url, data={"code": code, "csrf_token": csrf_token(page.text)})


def _code(step: int = 0) -> str:
    return pyotp.TOTP(factories.STAFF_TOTP_SECRET).at(clock.now() + dt.timedelta(
        seconds=30 * step))


@pytest.mark.parametrize("role", list(StaffRole))
def test_staff_cannot_reach_any_page_with_only_a_password(client, db, role):
    user = factories.create_staff(role)
    db.session.commit()
    response = _password_only(client, user)
    assert response.headers["Location"].endswith(CODE_PAGE)
    for url in ("/admin/", "/admin/rulesetversion/", "/", "/mon-compte",
                "/moderation/premiers-comptes"):
        response = _get(client, url)
        assert response.status_code == 302, url
        assert response.headers["Location"].endswith(CODE_PAGE), url


@pytest.mark.parametrize("role", list(StaffRole))
def test_with_a_valid_code_staff_reach_the_admin(client, db, role):
    user = factories.create_staff(role)
    db.session.commit()
    _password_only(client, user)
    response = _post_code(client, _code())
    assert response.status_code == 302
    assert _get(client, "/admin/").status_code == 200


def test_a_code_cannot_be_used_twice(app, client, db):
    user = factories.create_staff(StaffRole.ADMIN)
    db.session.commit()
    _password_only(client, user)
    code = _code()
    assert _post_code(client, code).status_code == 302
    other = app.test_client()
    _forget_cached_user()
    _password_only(other, user)
    replay = _post_code(other, code)  # the same code, within its 30 s step
    assert replay.status_code == 200 and "Code incorrect ou déjà utilisé" in replay.text
    assert _get(other, "/admin/").headers["Location"].endswith(CODE_PAGE)
    clock.set_now(T0 + dt.timedelta(seconds=30))
    assert _post_code(other, _code()).status_code == 302  # the next code works
    assert _get(other, "/admin/").status_code == 200


def test_wrong_codes_send_back_to_the_password_after_five(client, db):
    user = factories.create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    _password_only(client, user)
    wrong = "000000" if _code() != "000000" else "111111"
    for _ in range(4):
        response = _post_code(client, wrong)
        assert response.status_code == 200 and "Code incorrect" in response.text
    response = _post_code(client, wrong)
    assert response.status_code == 302 and response.headers["Location"].endswith("/connexion")
    assert "Trop de codes erronés" in _get(client, "/connexion").text
    # the right code no longer helps: this login attempt is over
    token = csrf_token(_get(client, "/connexion").text)
    response = client.post(CODE_PAGE, data={"code": _code(), "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/connexion")
    assert "/connexion" in _get(client, "/admin/").headers["Location"]


def test_a_recovery_code_works_once(app, client, db):
    user = factories.create_staff(StaffRole.ADMIN)
    codes = mfa.issue_recovery_codes(user)
    db.session.commit()
    _password_only(client, user)
    assert _post_code(client, codes[3].upper()).status_code == 302
    assert _get(client, "/admin/").status_code == 200
    other = app.test_client()
    _forget_cached_user()
    _password_only(other, user)
    again = _post_code(other, codes[3])
    assert again.status_code == 200 and "Code incorrect" in again.text
    assert _post_code(other, codes[4]).status_code == 302
    assert mfa.remaining_recovery_codes(user) == 8


def test_enrolment_end_to_end(client, db):
    user = factories.create_staff(StaffRole.RESPONSABLE_REGLES, mfa_enrolled=False)
    db.session.commit()
    response = _password_only(client, user)
    assert response.headers["Location"].endswith(ENROL_PAGE)
    assert _get(client, "/admin/").headers["Location"].endswith(ENROL_PAGE)
    page = _get(client, ENROL_PAGE)
    assert page.status_code == 200 and "<svg" in page.text  # the QR code, drawn inline
    secret = re.search(r'<code id="mfa-secret">([A-Z2-7]+)</code>', page.text).group(1)
    assert secret in _get(client, ENROL_PAGE).text  # the same secret on reload
    db.session.expire_all()
    stored = db.session.get(User, user.id).totp_secret_encrypted
    assert stored and secret not in stored  # encrypted at rest

    wrong = _post_code(client, "123456" if pyotp.TOTP(secret).now() != "123456" else "654321",
                       ENROL_PAGE)
    assert wrong.status_code == 200 and "Code incorrect" in wrong.text
    done = _post_code(client, pyotp.TOTP(secret).at(clock.now()), ENROL_PAGE)
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", done.text)
    assert len(set(codes)) == 10
    stored_hashes = set(db.session.scalars(select(MfaRecoveryCode.code_hash).where(
        MfaRecoveryCode.user_id == user.id)))
    assert len(stored_hashes) == 10 and not stored_hashes & set(codes)  # hashed only
    assert _get(client, "/admin/").status_code == 200
    assert _get(client, "/admin/rulesetversion/").status_code == 200


def test_users_who_are_not_staff_are_not_asked(client, db):
    user = factories.create_user()
    factories._save(Membership(user=user, structure=factories.create_structure(),
                               profile_of="gestionnaire_of_general"))
    db.session.commit()
    response = login(client, user, second_factor=False)
    assert response.status_code == 302 and "/connexion" not in response.headers["Location"]
    assert _get(client, "/mon-compte").status_code == 200
    assert _get(client, CODE_PAGE).headers["Location"].endswith("/connexion")
    assert _get(client, ENROL_PAGE).headers["Location"].endswith("/connexion")


def test_a_user_made_staff_during_a_session_enrols_first(client, db):
    user = factories.create_user()
    db.session.commit()
    login(client, user)
    assert _get(client, "/mon-compte").status_code == 200
    user.staff_role = StaffRole.MODERATEUR
    db.session.commit()
    assert _get(client, "/admin/").headers["Location"].endswith(ENROL_PAGE)


def test_wrong_codes_are_counted_per_account_across_logins(app, client, db):
    """Logging in again does not give endless tries: 20 wrong codes within the hour on the
    account, and even the right code is not checked until the hour has passed."""
    user = factories.create_staff(StaffRole.ADMIN)
    db.session.commit()
    wrong = "000000" if _code() != "000000" else "111111"
    for _ in range(4):  # four logins, five wrong codes each
        _password_only(client, user)
        for _ in range(5):
            _post_code(client, wrong)
    _password_only(client, user)
    response = _post_code(client, _code())
    assert response.status_code == 302 and response.headers["Location"].endswith("/connexion")
    assert "Trop de codes erronés pour ce compte" in _get(client, "/connexion").text
    clock.set_now(T0 + dt.timedelta(minutes=61))
    _password_only(client, user)
    assert _post_code(client, _code()).status_code == 302
    assert _get(client, "/admin/").status_code == 200


def test_an_admin_resets_a_lost_second_factor(app, client, db):
    """« Réinitialiser la double authentification » (admin): the member's sessions end and
    their next login asks for a new enrolment."""
    admin = factories.create_staff(StaffRole.ADMIN)
    moderator = factories.create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    login(client, moderator)
    assert _get(client, "/mon-compte").status_code == 200
    admin_browser = app.test_client()
    _forget_cached_user()
    login(admin_browser, admin)
    page = _get(admin_browser, "/admin/user/")
    response = admin_browser.post("/admin/user/action/", data={
        "action": "reinitialiser_mfa", "rowid": str(moderator.id),
        "csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    assert _get(client, "/mon-compte").status_code == 302  # logged out
    db.session.expire_all()
    assert db.session.get(User, moderator.id).totp_secret_encrypted is None
    fresh = app.test_client()
    _forget_cached_user()
    response = login(fresh, moderator)
    assert response.headers["Location"].endswith(ENROL_PAGE)


def test_an_admin_closes_sessions_from_the_sessions_screen(app, client, db):
    user = factories.create_user()
    admin = factories.create_staff(StaffRole.ADMIN)
    db.session.commit()
    login(client, user)
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    admin_browser = app.test_client()
    _forget_cached_user()
    login(admin_browser, admin)
    page = _get(admin_browser, "/admin/usersession/")
    assert page.status_code == 200 and user.email in page.text
    admin_browser.post("/admin/usersession/action/", data={
        "action": "fermer", "rowid": str(row.id), "csrf_token": csrf_token(page.text)})
    assert _get(client, "/mon-compte").status_code == 302


def test_a_cookie_copied_before_the_code_is_worth_nothing_after(app, client, db):
    user = factories.create_staff(StaffRole.ADMIN)
    db.session.commit()
    _password_only(client, user)
    copied = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    assert _post_code(client, _code()).status_code == 302
    assert _get(client, "/admin/").status_code == 200
    thief = app.test_client()
    thief.set_cookie(app.config["SESSION_COOKIE_NAME"], copied)
    assert "/connexion" in _get(thief, "/admin/").headers["Location"]


def test_demo_code_prints_the_code_a_demo_staff_account_accepts(app):
    """`backoffice demo-code` gives the current code of the demo staff key."""
    from backoffice import demo

    clock.set_now(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc))
    result = app.test_cli_runner().invoke(args=["demo-code"])
    assert result.exit_code == 0
    assert result.output.strip() == pyotp.TOTP(demo.DEMO_TOTP_SECRET).at(clock.now())


def test_parallel_codes_in_one_login_check_at_most_five(app, client, db,
                                                        monkeypatch):
    """20 wrong codes posted at the same instant with one session cookie (after the
    password): at most MFA_MAX_ATTEMPTS of them are checked, every answer is a page or a
    redirect (no 500). On SQLite too: its writers queue for the write lock (BEGIN
    IMMEDIATE at the first write, backoffice/sqlite.py) instead of « database is locked »."""
    import threading

    checks: list[str] = []
    real = mfa.verify

    def counting(user, code):
        checks.append(code)  # list.append is atomic: safe from threads
        return real(user, code)
    monkeypatch.setattr(mfa, "verify", counting)
    user = factories.create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    _password_only(client, user)
    token = csrf_token(_get(client, CODE_PAGE).text)
    cookie = client.get_cookie("session").value  # with the token the page put in it
    wrong = "000000" if _code() != "000000" else "111111"
    barrier = threading.Barrier(20)
    answers: list[int] = [0] * 20

    def attempt(index):
        browser = app.test_client()
        browser.set_cookie("session", cookie, domain="localhost")
        barrier.wait()
        answers[index] = browser.post(CODE_PAGE, data={"code": wrong,
                                                       "csrf_token": token}).status_code

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert set(answers) <= {200, 302} and 0 not in answers
    assert 1 <= len(checks) <= 5
