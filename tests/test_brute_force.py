"""Login throttling: each attempt is counted per account and per client address before the
password is checked; beyond 5 attempts on an account (or the address limit) in 15 minutes,
the login page says to wait, whatever the password, and the password is not even checked.
The counters decay when the window ends; a successful login resets the account's. It holds
under parallel attempts (real threads, committed transactions), on SQLite and PostgreSQL.
The message never says whether the login or the password was wrong."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from flask import g
from sqlalchemy import func, select

from backoffice import clock, passwords
from backoffice.models import RateLimit
from tests import factories
from tests.conftest import csrf_token, login

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
WRONG = "mauvais mot de passe"


def other_client(app, remote_addr: str = "127.0.0.1"):
    """A new browser (the test's app context shares ``g`` between requests: the cached
    user and CSRF token are dropped) from ``remote_addr``."""
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = remote_addr
    return browser


@pytest.fixture
def password_checks(monkeypatch) -> list[str]:
    """Every password hash check made (real ones and dummy ones), in order."""
    checks: list[str] = []
    real = passwords.check_password_hash

    def counting(password_hash, password):
        checks.append(password)  # list.append is atomic: safe from threads
        return real(password_hash, password)
    monkeypatch.setattr(passwords, "check_password_hash", counting)
    return checks


def test_sixth_attempt_waits_without_checking_the_password_then_decays(client, db,
                                                                       password_checks):
    clock.set_now(T0)
    user = factories.create_user()
    db.session.commit()
    for _ in range(5):
        assert "Identifiant ou mot de passe incorrect" in login(client, user, WRONG).text
    assert len(password_checks) == 5
    blocked = login(client, user)  # the right password, too late
    assert blocked.status_code == 200 and "Réessayez dans 15 minutes" in blocked.text
    assert len(password_checks) == 5  # refused without checking the password
    clock.set_now(T0 + dt.timedelta(minutes=10))
    assert "Réessayez dans 5 minutes" in login(client, user).text
    clock.set_now(T0 + dt.timedelta(minutes=15, seconds=1))
    assert login(client, user).status_code == 302


def test_success_resets_the_account_counter(app, client, db):
    clock.set_now(T0)
    user = factories.create_user()
    db.session.commit()
    for _ in range(4):
        login(client, user, WRONG)
    assert login(client, user).status_code == 302
    fresh = other_client(app)
    for _ in range(5):
        assert "Identifiant ou mot de passe incorrect" in login(fresh, user, WRONG).text
    assert "Trop de tentatives" in login(fresh, user).text


def test_unknown_account_is_throttled_like_a_known_one(client, db):
    clock.set_now(T0)
    for _ in range(5):
        login(client, "personne@exemple.fr", WRONG)
    assert "Trop de tentatives" in login(client, "personne@exemple.fr", WRONG).text


def test_address_blocked_across_accounts_whatever_x_forwarded_for(app, client, db,
                                                                  monkeypatch):
    """The address is ``remote_addr``: a forged X-Forwarded-For header changes nothing (a
    proxy in front is configured by its number of trusted hops, not read from the
    request)."""
    monkeypatch.setitem(app.config, "LOGIN_ATTEMPTS_PER_ADDRESS", 5)
    clock.set_now(T0)
    user = factories.create_user()
    db.session.commit()
    for n in range(5):
        page = client.get("/connexion")
        client.post("/connexion", data={"email": f"inconnu{n}@exemple.fr", "password": WRONG,
                                        "csrf_token": csrf_token(page.text)},
                    headers={"X-Forwarded-For": f"198.51.100.{n}"})
    assert "Trop de tentatives" in login(client, user).text
    other_address = other_client(app, "203.0.113.7")
    assert login(other_address, user).status_code == 302


def test_thirty_parallel_wrong_passwords_check_at_most_five(app, db, password_checks):
    """30 browsers post a wrong password for one account at the same instant: at most 5
    passwords are checked, every answer is a page (no 500), all but those say to wait."""
    with clock.frozen(T0):
        user = factories.create_user()
        db.session.commit()
        email = user.email
        barrier = threading.Barrier(30)
        answers: list[tuple[int, str]] = [(0, "")] * 30

        def attempt(index):
            browser = app.test_client()
            page = browser.get("/connexion")
            token = csrf_token(page.text)
            barrier.wait()
            response = browser.post("/connexion", data={"email": email, "password": WRONG,
                                                         "csrf_token": token})
            answers[index] = (response.status_code, response.text)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert [status for status, _ in answers] == [200] * 30
        wrong = sum("Identifiant ou mot de passe incorrect" in text for _, text in answers)
        waiting = sum("Trop de tentatives" in text for _, text in answers)
        assert len(password_checks) <= 5 and wrong == len(password_checks)
        assert wrong + waiting == 30
        db.session.rollback()  # read what the threads committed
        assert db.session.scalar(select(RateLimit.count).where(
            RateLimit.scope == "connexion_compte", RateLimit.key == email)) == 30
        assert db.session.scalar(select(func.count()).select_from(RateLimit)) == 2
