"""A login is a server-side session: logout, « Fermer mes autres sessions », the
deactivation of the account, inactivity (30 min for staff, 2 h for others) and the 12 h
limit end it, and a cookie captured before is worth nothing afterwards. The CSRF token is
renewed at login; a remember-me cookie never lets anyone in."""
from __future__ import annotations

import datetime as dt

import pytest
from flask import g
from flask_login.utils import encode_cookie
from itsdangerous import TimestampSigner
from sqlalchemy import select

from backoffice import clock
from backoffice.models import Membership, StaffRole, UserSession
from tests import factories
from tests.conftest import csrf_token, login

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)  # 10:00 in Paris


def _member():
    user = factories.create_user()
    factories._save(Membership(user=user, structure=factories.create_structure()))
    return user


def _cookie_name(app) -> str:
    return app.config["SESSION_COOKIE_NAME"]


def _session_cookie(client) -> str:
    return client.get_cookie(_cookie_name(client.application)).value


def _forget_cached_user() -> None:
    """The test's app context is shared by every request: drop what Flask-Login and
    Flask-WTF cached in ``g``, so that each request is judged on its own cookie."""
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)


def _browser_with(app, cookie: str | None = None):
    """Another browser (holding ``cookie``)."""
    _forget_cached_user()
    browser = app.test_client()
    if cookie is not None:
        browser.set_cookie(_cookie_name(app), cookie)
    return browser


def _logged_in(client) -> bool:
    """« Mon compte » opens (200) for a logged-in user; others go to the login page."""
    _forget_cached_user()
    response = client.get("/mon-compte")
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert "/connexion" in response.headers["Location"]
    return response.status_code == 200


def _logout(client) -> None:
    page = client.get("/mon-compte")
    response = client.post("/deconnexion", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302


def test_a_cookie_captured_before_logout_is_refused_afterwards(app, client, db):
    user = _member()
    db.session.commit()
    login(client, user)
    captured = _session_cookie(client)
    assert _logged_in(_browser_with(app, captured))  # the stolen cookie works... for now
    _logout(client)
    replay = _browser_with(app, captured)
    assert not _logged_in(replay)
    assert replay.get("/referent/").status_code == 302
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    assert row.ended_at is not None and row.end_reason == "deconnexion"


def test_a_cookie_signed_30_days_ago_is_refused(app, client, db, monkeypatch):
    user = _member()
    db.session.commit()
    real_timestamp = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp",
                        lambda self: real_timestamp(self) - 30 * 24 * 3600)
    login(client, user)
    old_cookie = _session_cookie(client)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real_timestamp)
    assert not _logged_in(_browser_with(app, old_cookie))


@pytest.mark.parametrize("staff, idle", [(False, 120), (True, 30)])
def test_a_session_ends_after_the_idle_timeout(app, client, db, staff, idle):
    clock.set_now(T0)
    user = factories.create_staff(StaffRole.MODERATEUR) if staff else _member()
    db.session.commit()
    login(client, user)
    clock.set_now(T0 + dt.timedelta(minutes=idle - 1))
    assert _logged_in(client)  # active again just before the limit
    clock.set_now(T0 + dt.timedelta(minutes=2 * idle - 2))
    assert _logged_in(client)
    clock.set_now(T0 + dt.timedelta(minutes=3 * idle - 2))
    assert not _logged_in(client)  # `idle` minutes without a request
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    assert row.end_reason == "inactivite"


def test_a_session_ends_12_hours_after_login_even_when_active(app, client, db):
    clock.set_now(T0)
    user = _member()
    db.session.commit()
    login(client, user)
    for minutes in range(100, 12 * 60, 100):
        clock.set_now(T0 + dt.timedelta(minutes=minutes))
        assert _logged_in(client), minutes
    clock.set_now(T0 + dt.timedelta(hours=12))
    assert not _logged_in(client)
    clock.set_now(T0 + dt.timedelta(days=30))
    assert not _logged_in(client)


def test_last_activity_is_written_at_most_once_a_minute(client, db):
    clock.set_now(T0)
    user = _member()
    db.session.commit()
    login(client, user)
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    clock.set_now(T0 + dt.timedelta(seconds=50))
    client.get("/mon-compte")
    db.session.refresh(row)
    assert row.last_seen_at == T0
    clock.set_now(T0 + dt.timedelta(seconds=70))
    client.get("/mon-compte")
    db.session.refresh(row)
    assert row.last_seen_at == T0 + dt.timedelta(seconds=70)


def test_close_my_other_sessions_from_my_account(app, client, db):
    clock.set_now(T0)
    user = _member()
    db.session.commit()
    other = _browser_with(app)
    login(other, user)
    clock.set_now(T0 + dt.timedelta(minutes=5))
    login(client, user)
    page = client.get("/mon-compte")
    assert "Fermer mes autres sessions" in page.text
    # both sessions are listed, with their start in Paris time
    assert page.text.count("02/03/2026 10:00") >= 1 and "02/03/2026 10:05" in page.text
    assert "cette session" in page.text
    response = client.post("/mon-compte", data={
        "action": "fermer_sessions", "sessions-csrf_token": csrf_token(page.text)},
        follow_redirects=True)
    assert "Vos autres sessions sont fermées." in response.text
    assert not _logged_in(other)
    assert _logged_in(client)
    page = client.get("/mon-compte")
    assert "02/03/2026 10:00" not in page.text  # the closed one is no longer listed


def test_password_reset_ends_every_session(app, client, db):
    from backoffice.models import Token

    user = _member()
    token, secret = Token.issue(purpose="reinitialisation", lifetime=dt.timedelta(hours=1),
                                user=user)
    db.session.add(token)
    db.session.commit()
    login(client, user)
    browser = _browser_with(app)
    page = browser.get(f"/reinitialisation/{secret}")
    new_password = "Gironde-Landes-Dordogne-2026!"
    browser.post(f"/reinitialisation/{secret}", data={
        "password": new_password, "confirmation": new_password,
        "csrf_token": csrf_token(page.text)})
    assert not _logged_in(client)


def test_deactivating_an_account_in_the_admin_ends_its_sessions(app, client, db):
    user = _member()
    admin = factories.create_staff(StaffRole.ADMIN)
    db.session.commit()
    login(client, user)
    assert _logged_in(client)
    admin_browser = _browser_with(app)
    login(admin_browser, admin)
    url = f"/admin/user/details/?id={user.id}"
    response = admin_browser.post("/admin/user/transition/", data={
        "id": user.id, "transition": "desactiver", "reason": "Départ de la structure",
        "csrf_token": csrf_token(admin_browser.get(url).text)})
    assert response.status_code == 302
    assert not _logged_in(client)
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    assert row.end_reason == "desactivation"


def test_the_csrf_token_is_renewed_at_login(client, db):
    user = _member()
    db.session.commit()
    before = csrf_token(client.get("/connexion").text)
    login(client, user)
    # the token of the page seen before login no longer validates a form
    response = client.post("/deconnexion", data={"csrf_token": before})
    assert response.status_code == 400
    assert _logged_in(client)


def test_a_remember_me_cookie_does_not_log_anyone_in(app, db):
    user = _member()
    db.session.commit()
    browser = _browser_with(app)
    browser.set_cookie(app.config.get("REMEMBER_COOKIE_NAME", "remember_token"),
                       encode_cookie(user.get_id()))
    assert not _logged_in(browser)
