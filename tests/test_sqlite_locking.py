"""SQLite (``make run``: the scheduler inside the web process): a job and the pages work on
the same database file at once, through the application's own engine, without
« database is locked ».

The shape that failed: a transaction reads, then writes, while another connection commits
in between — a job reads a message, sends it and marks it sent while a user saves a page;
a page reads its session and saves while a job commits. In WAL mode SQLite refuses such a
write at once (the busy timeout does not apply); ``backoffice/sqlite.py`` starts each
transaction with BEGIN IMMEDIATE at its first write instead.
"""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import event, select, text, update

from backoffice import clock, create_app, scheduler
from backoffice.config import TestingConfig
from backoffice.extensions import db
from backoffice.models import Channel, JobRun, Membership, OutboundMessage, RateLimit, User
from tests import factories
from tests.conftest import Inbox, csrf_token, login, serve_smtp

NOW = dt.datetime(2027, 3, 10, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def sqlite_only(dialect):
    if dialect != "sqlite":
        pytest.skip("SQLite's locking (PostgreSQL locks rows)")


def start_in_another_thread(app, work):
    """Start ``work()`` in a thread of its own, with its own application context and
    database connection (another worker, or the embedded scheduler); return a function
    that waits for it and re-raises what it raised."""
    errors: list[BaseException] = []

    def run():
        with app.app_context():
            try:
                work()
            except BaseException as error:  # re-raised in the test's thread
                errors.append(error)
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()

    def finish():
        thread.join(timeout=120)
        assert not thread.is_alive() and not errors, errors
    return finish


def in_another_thread(app, work) -> None:
    start_in_another_thread(app, work)()


class UserLogsInDuringFirstMessage(Inbox):
    """An SMTP server during whose first message a user submits the login page (which
    records the attempt and commits), as happens while the scheduler sends."""

    def __init__(self, app):
        super().__init__()
        self.app = app

    async def handle_DATA(self, server, session, envelope):
        if not self.messages:
            def log_in():
                browser = self.app.test_client()
                assert login(browser, "quelquun@exemple.fr", "pas le bon").status_code == 200
            in_another_thread(self.app, log_in)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def inbox(app):
    yield from serve_smtp(app, UserLogsInDuringFirstMessage(app))


def test_email_job_finishes_when_a_user_commits_while_it_sends(app, inbox):
    """The job reads a message, hands it to SMTP, then marks it sent; a user's page
    commits in between: every message is sent once and marked sent, the run succeeds."""
    db.session.add_all([OutboundMessage(channel=Channel.EMAIL, recipient=f"of{i}@exemple.fr",
                                        subject=f"Message {i}", body_text="Bonjour",
                                        next_attempt_at=NOW) for i in range(3)])
    db.session.commit()

    run = scheduler.run_job("envoi_courriels", at=NOW)

    assert (run.status, run.error, run.rows_changed) == ("succes", None, 3)
    assert sorted(m["To"] for m in inbox.messages) == [f"of{i}@exemple.fr" for i in range(3)]
    db.session.expire_all()
    assert {(m.status, m.claim_token) for m in db.session.scalars(select(OutboundMessage))} \
        == {("envoye", None)}
    assert db.session.scalar(select(RateLimit.count).where(
        RateLimit.key == "quelquun@exemple.fr")) == 1  # the user's attempt was recorded


def test_page_saves_when_a_job_commits_between_its_read_and_its_write(app, client):
    """A user saves « Mon compte »; a scheduled job runs and commits between the page's
    first read (its login session) and its save: the page saves, no 503."""
    with clock.frozen(NOW):
        user = factories.create_user()
        factories._save(Membership(user=user, structure=factories.create_structure()))
        db.session.commit()
        user_id = user.id
        login(client, user)
        page = client.get("/mon-compte")
        armed = [True]

        def job_commits_after_the_first_read(_conn, _cursor, statement, *_args):
            if armed[0] and statement.lstrip().upper().startswith("SELECT") \
                    and "user_session" in statement:
                armed[0] = False
                in_another_thread(app, lambda: scheduler.run_job("purge_compteurs"))

        event.listen(db.engine, "after_cursor_execute", job_commits_after_the_first_read)
        try:
            response = client.post("/mon-compte", data={
                "action": "profil", "profil-csrf_token": csrf_token(page.text),
                "profil-nom": "Durand", "profil-prenom": "Anne", "profil-telephone": ""},
                follow_redirects=True)
        finally:
            event.remove(db.engine, "after_cursor_execute", job_commits_after_the_first_read)

    assert not armed[0]
    assert response.status_code == 200, response.status_code
    assert "Vos coordonnées sont enregistrées" in response.text
    db.session.expire_all()
    assert db.session.get(User, user_id).nom == "Durand"
    assert db.session.scalars(select(JobRun.status)).all() == ["succes"]


def test_read_for_update_waits_for_the_writer_and_sees_its_change(app):
    """Two workers read a counter ``FOR UPDATE`` (as the services lock a row on
    PostgreSQL) and add one: the second waits for the first and adds to its result."""
    db.session.add(RateLimit(scope="essai", key="compteur", count=0, window_start=NOW))
    db.session.commit()
    first_has_read, done = threading.Event(), threading.Event()

    def add_one(*, first: bool):
        if not first:
            first_has_read.wait(30)
        count = db.session.scalar(select(RateLimit.count).where(RateLimit.key == "compteur")
                                  .with_for_update())
        if first:
            first_has_read.set()
            done.wait(0.2)  # give the second worker the time to try its read
        db.session.execute(update(RateLimit).where(RateLimit.key == "compteur")
                           .values(count=count + 1))
        db.session.commit()

    second = start_in_another_thread(app, lambda: add_one(first=False))
    in_another_thread(app, lambda: add_one(first=True))
    second()
    assert db.session.scalar(select(RateLimit.count)) == 2


def test_busy_timeout_is_configurable(tmp_path):
    url = f"sqlite:///{tmp_path / 'busy.sqlite3'}"
    for config, expected in (({}, 30000), ({"SQLITE_BUSY_TIMEOUT_MS": 1234}, 1234)):
        other = create_app(type("Config", (TestingConfig,),
                                {"SQLALCHEMY_DATABASE_URI": url, **config}))
        with other.app_context():
            assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == expected
            db.session.remove()
            db.engine.dispose()
