"""Login and registration do the same expensive work whether the account exists or not, so
that their answer time tells nothing: one password hash check on a login (against a dummy
hash when there is no account, or no password), one hash on a registration (also when the
address is taken). Counted, not timed. (The forgotten-password form hashes nothing in
either case; its e-mail is only queued.)"""
from __future__ import annotations

import pytest
from flask import g

from backoffice import passwords
from backoffice.models import StructureKind
from tests import factories
from tests.conftest import csrf_token, login

STRONG = "trois chevaux dans la lande"


@pytest.fixture
def hash_calls(monkeypatch) -> dict[str, int]:
    calls = {"hash": 0, "check": 0}
    real_hash, real_check = passwords.generate_password_hash, passwords.check_password_hash

    def counting_hash(password, *args, **kwargs):
        calls["hash"] += 1
        return real_hash(password, *args, **kwargs)

    def counting_check(password_hash, password):
        calls["check"] += 1
        return real_check(password_hash, password)
    monkeypatch.setattr(passwords, "generate_password_hash", counting_hash)
    monkeypatch.setattr(passwords, "check_password_hash", counting_check)
    return calls


def _counted(calls, action) -> dict[str, int]:
    before = dict(calls)
    action()
    return {key: calls[key] - before[key] for key in calls}


def _browser(app):
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    return app.test_client()


def test_login_checks_one_hash_whether_the_account_exists_or_not(app, db, hash_calls):
    user = factories.create_user()
    without_password = factories.create_user()
    without_password.password_hash = None
    db.session.commit()
    known = _counted(hash_calls, lambda: login(_browser(app), user, "mauvais mot de passe"))
    unknown = _counted(hash_calls, lambda: login(_browser(app), "personne@exemple.fr",
                                                 "mauvais mot de passe"))
    no_hash = _counted(hash_calls, lambda: login(_browser(app), without_password, "quelconque"))
    assert known == unknown == no_hash == {"hash": 0, "check": 1}


def test_registration_hashes_the_password_whether_the_address_is_taken_or_not(app, db,
                                                                             hash_calls):
    factories.create_user(email="prise@exemple.fr")
    structure = factories.create_structure(kind=StructureKind.PRESCRIPTEUR,
                                           prescriber_type="mission_locale")
    db.session.commit()
    url = f"/inscription?structure_id={structure.id}"

    def register(email):
        def action():
            browser = _browser(app)
            page = browser.get(url)
            response = browser.post(url, data={
                "csrf_token": csrf_token(page.text), "structure_recherche": "Mission locale",
                "kind": "prescripteur", "prescriber_type": "mission_locale", "email": email,
                "mot_de_passe": STRONG, "mot_de_passe_confirmation": STRONG,
                "nom": "Martin", "prenom": "Claire", "consentement": "oui"})
            assert response.headers["Location"] == "/inscription/envoyee"
        return action

    taken = _counted(hash_calls, register("prise@exemple.fr"))
    new = _counted(hash_calls, register("nouvelle@exemple.fr"))
    assert taken == new == {"hash": 1, "check": 0}
