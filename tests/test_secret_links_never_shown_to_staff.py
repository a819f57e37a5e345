"""No staff member ever reads a live single-use link. The « Courriels » screens show
« lien masqué » where a reset, activation, e-mail change or delegation link stands; the
real link exists only in the e-mail handed to SMTP, and the queue forgets it once the
message is sent or has failed for good."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from flask_admin.contrib.sqla import ModelView
from sqlalchemy import select

from backoffice import clock, scheduler, siret
from backoffice.jobs import MAX_ATTEMPTS
from backoffice.models import MessageStatus, OutboundMessage, StaffRole, Token, UserState
from backoffice.services import accounts as service
from tests import factories
from tests.conftest import csrf_token, free_port, login

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
NEW_PASSWORD = "trois chevaux dans la lande"
SIRET, SIRET_TIERS = siret.make(55555555), siret.make(66666666)
SECRET_PATHS = (r"/(?:reinitialisation|activation|confirmation-courriel|delegations/accepter)"
                r"/[^\s\"'<>&]+")


@pytest.fixture
def issued_secrets(monkeypatch):
    """Every single-use secret issued during the test: what an attacker looks for."""
    secrets: list[str] = []
    issue = Token.issue.__func__

    def recording_issue(cls, **kwargs):
        token, secret = issue(cls, **kwargs)
        secrets.append(secret)
        return token, secret

    monkeypatch.setattr(Token, "issue", classmethod(recording_issue))
    return secrets


def _queue_every_kind_of_link(admin) -> None:
    """A reset, an activation, an e-mail change and a delegation invitation are queued
    (from a plain application context, as a job or the CLI would)."""
    newcomer = factories.create_user(email="nouveau@exemple.fr", state=UserState.A_ACTIVER)
    mover = factories.create_user(email="ancienne@exemple.fr")
    service.request_password_reset(admin.email)
    service.send_activation(newcomer)
    service.request_email_change(mover, "nouvelle@exemple.fr")
    service.delegate(actor=admin, siret_etablissement=SIRET, siret_tiers=SIRET_TIERS,
                     email_tiers="tiers@exemple.fr", role="declarant", end_date=None)


def _everything_staff_can_read(app, client, db) -> dict[str, str]:
    """Every admin screen the logged-in user may open: each list, the « Courriels » search
    by every recipient, each row's detail and edit page. {url: page text}."""
    admin = app.extensions["admin"][0]
    urls = ["/admin/"]
    for view in admin._views:
        if not isinstance(view, ModelView):
            continue
        base = f"/admin/{view.endpoint}/"
        urls.append(base)
        for object_id in db.session.scalars(select(view.model.id)):
            urls.append(f"{base}details/?id={object_id}")
            if view.can_edit:
                urls.append(f"{base}edit/?id={object_id}")
    for recipient in db.session.scalars(select(OutboundMessage.recipient)):
        urls.append(f"/admin/outboundmessage/?search={recipient}")
    pages = {}
    for url in urls:
        response = client.get(url)
        if response.status_code == 200:
            pages[url] = response.text
    assert "/admin/outboundmessage/" in pages, "the « Courriels » screen was not readable"
    return pages


@pytest.mark.parametrize("role", [StaffRole.MODERATEUR, StaffRole.ADMIN])
def test_courriels_screens_show_lien_masque_never_the_link(app, client, db, issued_secrets,
                                                           role):
    """Staff opening the « Courriels » list, details and search (and every other admin
    screen) read « lien masqué » instead of each single-use link."""
    clock.set_now(T0)
    admin = factories.create_staff(StaffRole.ADMIN, email="admin@cap-metiers.pro")
    reader = admin if role == StaffRole.ADMIN else factories.create_staff(role)
    _queue_every_kind_of_link(admin)
    db.session.commit()
    assert len(issued_secrets) == 4

    login(client, reader)
    pages = _everything_staff_can_read(app, client, db)
    for url, text in pages.items():
        for secret in issued_secrets:
            assert secret not in text, f"a live secret is readable on {url}"
        assert not re.search(SECRET_PATHS, text), url
    reset = db.session.scalar(select(OutboundMessage).where(
        OutboundMessage.recipient == admin.email))
    detail = pages[f"/admin/outboundmessage/details/?id={reset.id}"]
    assert "Réinitialisation de votre mot de passe" in detail and "« lien masqué »" in detail
    assert "sealed_links" not in detail and reset.sealed_links not in detail


def test_a_moderator_cannot_take_over_the_admin_account(app, client, db, issued_secrets):
    """The measured attack: a moderator asks a reset for the admin's address, reads every
    admin screen and tries every link found there: the admin's password stays unchanged."""
    clock.set_now(T0)
    admin = factories.create_staff(StaffRole.ADMIN, email="admin@cap-metiers.pro")
    moderator = factories.create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    login(client, moderator)
    page = client.get("/mot-de-passe-oublie")
    client.post("/mot-de-passe-oublie", data={"email": admin.email,
                                              "csrf_token": csrf_token(page.text)})
    assert len(issued_secrets) == 1  # a live reset link for the admin is in the queue

    pages = _everything_staff_can_read(app, client, db)
    found = {path for text in pages.values() for path in re.findall(SECRET_PATHS, text)}
    for path in found:
        form = client.get(path)
        if form.status_code == 200:
            client.post(path, data={"password": NEW_PASSWORD, "confirmation": NEW_PASSWORD,
                                    "csrf_token": csrf_token(form.text)})
    db.session.expire_all()
    assert not admin.check_password(NEW_PASSWORD)
    assert admin.check_password(factories.PASSWORD)
    assert all(issued_secrets[0] not in text for text in pages.values())


def test_the_delivered_email_carries_the_working_link_then_the_queue_forgets_it(
        app, client, db, smtp_server):
    """The e-mail received over SMTP holds the real reset link, which works; once sent,
    the stored message holds no secret."""
    clock.set_now(T0)
    user = factories.create_user(email="paul@exemple.fr")
    db.session.commit()
    page = client.get("/mot-de-passe-oublie")
    client.post("/mot-de-passe-oublie", data={"email": "paul@exemple.fr",
                                              "csrf_token": csrf_token(page.text)})
    assert scheduler.run_job("envoi_courriels", at=T0).rows_changed == 1

    received = smtp_server.messages[0]
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    link = re.search(r"http://localhost(/reinitialisation/(\S+))", text)
    assert link and "lien masqué" not in text + html
    assert f'href="{link.group(0)}"' in html
    path, secret = link.group(1), link.group(2)

    form = client.get(path)
    assert form.status_code == 200
    response = client.post(path, data={"password": NEW_PASSWORD, "confirmation": NEW_PASSWORD,
                                       "csrf_token": csrf_token(form.text)})
    assert response.status_code == 302
    db.session.expire_all()
    assert user.check_password(NEW_PASSWORD)

    row = db.session.execute(select(OutboundMessage.__table__)).mappings().one()
    assert row["status"] == MessageStatus.ENVOYE
    assert all(secret not in str(value) for value in row.values())
    assert row["sealed_links"] is None


def test_a_message_that_fails_for_good_keeps_no_secret(app, db, issued_secrets):
    """An unreachable SMTP server: after the last attempt the message is « Échec
    définitif » and its sealed link is erased."""
    clock.set_now(T0)
    user = factories.create_user(email="paul@exemple.fr")
    service.request_password_reset(user.email)
    db.session.commit()
    message = db.session.scalar(select(OutboundMessage))
    assert message.sealed_links and issued_secrets[0] not in message.sealed_links
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_STARTTLS=False)
    try:
        at = T0
        for _ in range(MAX_ATTEMPTS):
            scheduler.run_job("envoi_courriels", at=at)
            db.session.expire_all()
            # Kept while a retry may still deliver it, erased at the last failure.
            pending = message.status == MessageStatus.EN_ATTENTE
            assert (message.sealed_links is not None) == pending
            at = message.next_attempt_at
    finally:
        app.config.update(SMTP_HOST="", SMTP_PORT=587, SMTP_STARTTLS=True)
    assert message.status == MessageStatus.ECHEC and message.sealed_links is None


def test_links_sealed_under_another_key_fail_the_message_with_a_french_error(
        app, db, smtp_server):
    """After a change of SECRET_KEY, a queued link cannot be read: the message fails at
    once with a French error, nothing is sent, the sealed value is erased."""
    clock.set_now(T0)
    user = factories.create_user(email="paul@exemple.fr")
    service.request_password_reset(user.email)
    db.session.commit()
    previous = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "une-autre-clef"
    try:
        scheduler.run_job("envoi_courriels", at=T0)
    finally:
        app.config["SECRET_KEY"] = previous
    message = db.session.scalar(select(OutboundMessage))
    db.session.refresh(message)
    assert smtp_server.messages == []
    assert message.status == MessageStatus.ECHEC and message.sealed_links is None
    assert "refaire la démarche" in message.last_error


def test_a_secret_link_cannot_reach_the_stored_body_by_accident(db):
    """The mechanism, not each template: a single-use link put in the template context
    instead of ``links=`` is refused, and ``public_url`` refuses a secret."""
    from backoffice.links import public_url, secret_url
    from backoffice.notifications import queue_email

    user = factories.create_user()
    url = secret_url("accounts.reset_password", secret="secret-de-test-4f2a")
    with pytest.raises(ValueError, match="links="):
        queue_email(user.email, "reinitialisation", subject="Réinitialisation", user=user,
                    url=url, expires="demain")
    with pytest.raises(ValueError, match="secret_url"):
        public_url("accounts.reset_password", secret="secret-de-test-4f2a")
    message = queue_email(user.email, "reinitialisation", subject="Réinitialisation",
                          user=user, links={"url": url}, expires="demain")
    assert "secret-de-test-4f2a" not in message.body_text + message.body_html
    assert message.body_text.count("« lien masqué »") == 1
