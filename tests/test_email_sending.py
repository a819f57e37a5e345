"""The outbound queue: e-mails sent through a real SMTP server on loopback, retried with
backoff, then marked failed; without SMTP settings they stay readable in the admin."""
from __future__ import annotations

import datetime as dt
import markupsafe

from backoffice import clock, scheduler, tasks
from backoffice.jobs import MAX_ATTEMPTS
from backoffice.models import OutboundMessage, StaffRole
from backoffice.notifications import queue_email
from tests.conftest import free_port, login
from tests.factories import create_formation, create_staff

NOW = dt.datetime(2027, 3, 10, 9, 0, tzinfo=dt.timezone.utc)


def _queue(db, recipient="of@exemple.fr"):
    formation = create_formation(intitule="Titre professionnel Carreleur-chapiste")
    with clock.frozen(NOW):
        message = queue_email(recipient, "rappel_moderation", subject="Formation à modérer",
                              related=formation, reference=formation.reference,
                              intitule=formation.intitule, submitted="01/03/2027")
    db.session.commit()
    return message


def test_email_is_delivered_through_smtp(db, smtp_server):
    message = _queue(db)
    first = scheduler.run_job("envoi_courriels", at=NOW)
    second = scheduler.run_job("envoi_courriels", at=NOW)
    assert (first.rows_changed, second.rows_changed) == (1, 0)
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received["To"] == "of@exemple.fr" and received["Subject"] == "Formation à modérer"
    text = received.get_body(("plain",)).get_content()
    assert "Titre professionnel Carreleur-chapiste" in text
    assert received.get_body(("html",)) is not None
    db.session.expire_all()
    stored = db.session.get(OutboundMessage, message.id)
    assert (stored.status, stored.sent_at, stored.attempts) == ("envoye", NOW, 1)


def test_smtp_failure_is_retried_with_backoff_then_marked_failed(app, db):
    message = _queue(db)
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_STARTTLS=False)
    try:
        at = NOW
        for attempt in range(1, MAX_ATTEMPTS + 1):
            run = scheduler.run_job("envoi_courriels", at=at)
            assert run.status == "succes"
            db.session.expire_all()
            stored = db.session.get(OutboundMessage, message.id)
            assert stored.attempts == attempt and "Connection refused" in stored.last_error
            if attempt < MAX_ATTEMPTS:
                assert stored.status == "en_attente" and stored.next_attempt_at > at
                early = scheduler.run_job("envoi_courriels", at=at + dt.timedelta(minutes=1))
                assert early.rows_seen == 0  # not due before its backoff
                at = stored.next_attempt_at
        assert stored.status == "echec"
    finally:
        app.config.update(SMTP_HOST="", SMTP_PORT=587, SMTP_STARTTLS=True)


def test_without_smtp_messages_stay_readable_in_the_admin(client, db):
    message = _queue(db)
    run = scheduler.run_job("envoi_courriels", at=NOW)
    assert run.summary == "Aucun serveur SMTP configuré : 1 courriel reste en attente"
    user = create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    login(client, user)
    page = client.get(f"/admin/outboundmessage/details/?id={message.id}")
    assert "Formation à modérer" in page.text and "Carreleur-chapiste" in page.text


def test_jobs_screen_lists_and_runs_jobs(client, db):
    from tests.conftest import csrf_token

    user = create_staff(StaffRole.ADMIN)
    db.session.commit()
    login(client, user)
    page = client.get("/admin/taches/")
    assert page.status_code == 200
    for job in scheduler.jobs().values():
        assert str(markupsafe.escape(job.label)) in page.text
    response = client.post("/admin/taches/lancer/", data={
        "job": "expiration_liens", "csrf_token": csrf_token(page.text)}, follow_redirects=True)
    assert "Suppression des liens expirés : mise en file, elle démarre dans quelques " \
           "secondes." in response.text
    db.session.commit()  # the test client shares this session: end its read snapshot
    tasks.run_pending(client.application)  # a runner process does it
    page = client.get("/admin/taches/").text
    assert "0 lien expiré ou utilisé supprimé" in page
    assert "0 vues, 0 modifiées" in page
