"""The database lost mid-request: a GET is run once more and answers; a POST gets the
French « Service momentanément indisponible » page (503), never a raw 500, and nothing is
half-written. Connections are really terminated (``pg_terminate_backend``), so these run on
PostgreSQL."""
from __future__ import annotations

import re

import psycopg
import pytest
from sqlalchemy import func, select

from backoffice.models import UserSession
from backoffice.views import main as main_views
from tests import factories
from tests.conftest import TEST_DATABASE_URL, login


@pytest.fixture(autouse=True)
def postgresql_only(dialect):
    if dialect != "postgresql":
        pytest.skip("connections are terminated on PostgreSQL")


def terminate_other_connections() -> None:
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def test_a_page_that_loses_the_database_is_run_again_and_answers(client, db, monkeypatch):
    user = factories.create_member(factories.create_structure(),
                                   profile_of="gestionnaire_of_general")
    db.session.commit()
    login(client, user)
    real, calls = main_views.user_memberships, []

    def memberships_after_a_cut(someone):
        calls.append(1)
        if len(calls) == 1:
            terminate_other_connections()  # the request's own connection dies here
        return real(someone)
    monkeypatch.setattr(main_views, "user_memberships", memberships_after_a_cut)
    response = client.get("/")
    assert response.status_code == 200
    assert len(calls) == 2


def test_a_form_that_loses_the_database_gets_the_503_page(app, client, db, monkeypatch):
    """« Fermer mes autres sessions » while the database goes away: the French 503 page
    (never run twice), and nothing half-written: the other session is still open."""
    from backoffice.services import sessions

    user = factories.create_member(factories.create_structure(),
                                   profile_of="gestionnaire_of_general")
    db.session.commit()
    login(app.test_client(), user)
    login(client, user)
    page = client.get("/mon-compte")
    assert page.status_code == 200
    real, calls = sessions.end_all, []

    def end_all_after_a_cut(*args, **kwargs):
        calls.append(1)
        terminate_other_connections()
        return real(*args, **kwargs)
    monkeypatch.setattr(sessions, "end_all", end_all_after_a_cut)
    form = re.search(r'name="sessions-csrf_token"[^>]*value="([^"]+)"', page.text) or \
        re.search(r'value="([^"]+)"[^>]*name="sessions-csrf_token"', page.text)
    response = client.post("/mon-compte", data={
        "action": "fermer_sessions", "sessions-csrf_token": form.group(1)})
    assert response.status_code == 503
    assert "Service momentanément indisponible" in response.text
    assert response.headers["Retry-After"] == "5"
    assert len(calls) == 1
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(UserSession).where(
        UserSession.ended_at.is_(None))) == 2
