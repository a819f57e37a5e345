"""Test fixtures: one application per run, an empty database for every test.

The database is SQLite (a temporary file) unless ``TEST_DATABASE_URL`` names another one
(PostgreSQL in CI). The schema is created once; after each test every table is emptied,
so each test starts from an empty, isolated database — committed data included, which
lets tests use real transactions and threads.
"""
from __future__ import annotations

import asyncio
import email
import os
import re
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller

# Applications created in tests with a dict config: no gc.freeze() (Config.GC_FREEZE_AT_START)
os.environ.setdefault("GC_FREEZE_AT_START", "0")
from sqlalchemy import text

from backoffice import clock, create_app
from backoffice.config import TestingConfig
from backoffice.extensions import db as _db
from tests import factories

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(type("Config", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": database_url}))
    with app.app_context():
        _check_url(database_url)
        _db.drop_all()
        _db.create_all()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.drop_all()
        _db.engine.dispose()


def _check_url(url: str) -> None:
    engine_url = _db.engine.url.render_as_string(hide_password=False)
    expected = url.replace("postgresql://", "postgresql+psycopg://", 1)
    assert engine_url == expected, (engine_url, expected)


@pytest.fixture(autouse=True)
def app_context(app):
    with app.app_context():
        yield
        _db.session.remove()
        _empty_tables()
    clock.set_now(None)


def _empty_tables() -> None:
    tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE {} RESTART IDENTITY CASCADE".format(
                ", ".join(f'"{t}"' for t in tables))))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def db():
    return _db


@pytest.fixture
def dialect() -> str:
    return _db.engine.dialect.name


@pytest.fixture
def client(app):
    return app.test_client()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def delivered_text(message) -> str:
    """The text of a queued e-mail as its recipient receives it: the sealed single-use
    links put back, as the sending job does (staff only ever see « lien masqué »)."""
    from backoffice.links import unseal

    return unseal(message.sealed_links, message.body_text, None)[0]


def login(client, user_or_email, password: str = factories.PASSWORD, *,
          second_factor: bool = True):
    """Log in through the login form, as a user would (CSRF included). For an enrolled
    staff user, the second step follows with the current TOTP code (``second_factor``)."""
    email = getattr(user_or_email, "email", user_or_email)
    page = client.get("/connexion")
    response = client.post("/connexion", data={
        "email": email, "password": password, "csrf_token": csrf_token(page.text)})
    if second_factor and response.status_code == 302 \
            and response.headers["Location"].endswith("/connexion/code"):
        response = submit_totp_code(client, email)
    return response


@pytest.fixture
def admin_client(client, db):
    """The test client logged in as an admin (password, then the second factor)."""
    from backoffice.models import StaffRole

    admin = factories.create_staff(StaffRole.ADMIN)
    db.session.commit()
    login(client, admin)
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """The messages an SMTP server received; ``delay`` seconds per message, as a real
    server takes."""

    def __init__(self, delay: float = 0.0):
        self.messages: list[email.message.EmailMessage] = []
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp_server(app):
    """A real SMTP server on loopback (aiosmtpd); the app sends to it; yields its inbox."""
    yield from serve_smtp(app, Inbox())


def serve_smtp(app, inbox: Inbox):
    """Serve ``inbox`` on a free loopback port and point the app at it, while iterated."""
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    previous = {k: app.config[k] for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS")}
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    yield inbox
    app.config.update(previous)
    controller.stop()


def totp_code(email: str) -> str:
    """The current TOTP code of the enrolled user ``email``, from their stored secret. Tests
    log the same staff user in several times within one 30 s step: the replay guard is
    reset first (the test of the guard itself does not use this helper)."""
    import pyotp
    from sqlalchemy import select

    from backoffice import crypto
    from backoffice.models import User

    user = _db.session.scalar(select(User).where(User.email == email.lower()))
    secret = crypto.mfa_fernet().decrypt(user.totp_secret_encrypted.encode()).decode()
    if user.totp_last_counter is not None:
        user.totp_last_counter = None
        _db.session.commit()
    return pyotp.TOTP(secret).at(clock.now())


def submit_totp_code(client, email: str):
    page = client.get("/connexion/code")
    return client.post("/connexion/code", data={
        "code": totp_code(email), "csrf_token": csrf_token(page.text)})
