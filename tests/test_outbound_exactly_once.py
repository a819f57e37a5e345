"""Exactly-once delivery of the outbound queue: two or four senders running at once
(« Lancer maintenant » during the scheduler's minute job) against a real SMTP server
(aiosmtpd) and a real HTTP hub deliver every message once, none twice, none lost; a
sender killed mid-way leaves a lease that expires, and the next run sends the message
with the same Message-ID / Idempotency-Key. On PostgreSQL and on SQLite (``make run``)."""
from __future__ import annotations

import datetime as dt
import http.server
import threading
import time

import pytest

from backoffice import clock, scheduler
from backoffice.extensions import db
from backoffice.jobs import LEASE
from backoffice.models import Channel, OutboundMessage
from tests.conftest import Inbox, free_port, serve_smtp

NOW = dt.datetime(2027, 3, 10, 9, 0, tzinfo=dt.timezone.utc)
COUNT = 60


@pytest.fixture
def smtp_inbox(app):
    """A real SMTP server that takes a little time per message, as a real server does."""
    yield from serve_smtp(app, Inbox(delay=0.01))


@pytest.fixture
def hub_keys(app):
    """A real HTTP endpoint on loopback recording the Idempotency-Key of each POST."""
    keys: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.01)
            keys.append(self.headers["Idempotency-Key"])
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    previous = app.config["HUB_ENDPOINT_URL"]
    app.config["HUB_ENDPOINT_URL"] = f"http://127.0.0.1:{server.server_address[1]}/messages"
    yield keys
    app.config["HUB_ENDPOINT_URL"] = previous
    server.shutdown()
    server.server_close()


def _queue(channel: str, count: int) -> list[int]:
    messages = [OutboundMessage(channel=channel, recipient=f"of{i}@exemple.fr", subject=f"Message {i}",
                                body_text=f"Bonjour {i}", payload={"n": i},
                                idempotency_key=f"test:{channel}:{i}", next_attempt_at=NOW)
                for i in range(count)]
    db.session.add_all(messages)
    db.session.commit()
    return [m.id for m in messages]


def _senders_together(app, job: str, senders: int) -> list[str]:
    """Run ``job`` in ``senders`` threads, released together and a little staggered (the
    second starts while the first is sending); return the status of each run."""
    barrier, statuses = threading.Barrier(senders), [""] * senders

    def run(index):
        with app.app_context():
            barrier.wait()
            time.sleep(0.1 * index)
            statuses[index] = scheduler.run_job(job, at=NOW).status
            db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


@pytest.mark.parametrize("senders", [2, 4])
def test_concurrent_email_senders_deliver_each_message_once(app, smtp_inbox, senders):
    ids = _queue(Channel.EMAIL, COUNT)
    assert _senders_together(app, "envoi_courriels", senders) == ["succes"] * senders
    received = sorted(m["Message-ID"] for m in smtp_inbox.messages)
    assert received == sorted(f"<outbound-{i}@localhost>" for i in ids)  # 0 duplicate, 0 lost
    db.session.expire_all()
    stored = db.session.query(OutboundMessage).all()
    assert {(m.status, m.attempts, m.claim_token) for m in stored} == {("envoye", 1, None)}


@pytest.mark.parametrize("senders", [2, 4])
def test_concurrent_hub_senders_deliver_each_message_once(app, hub_keys, senders):
    _queue(Channel.HUB, COUNT)
    assert _senders_together(app, "envoi_hub", senders) == ["succes"] * senders
    assert sorted(hub_keys) == sorted(f"test:hub:{i}" for i in range(COUNT))
    db.session.expire_all()
    assert {m.status for m in db.session.query(OutboundMessage)} == {"envoye"}


def test_message_claimed_by_a_killed_sender_is_sent_once_its_lease_has_expired(
        db, smtp_inbox):
    """A sender killed after claiming a message: the message is left alone while the
    lease runs, then the next run sends it, with its stable Message-ID."""
    (message_id,) = _queue(Channel.EMAIL, 1)
    killed_at = dt.datetime(2027, 3, 10, 9, 0, 30, tzinfo=dt.timezone.utc)
    message = db.session.get(OutboundMessage, message_id)
    message.claim_token, message.claimed_until = "killed-sender", killed_at + LEASE
    db.session.commit()
    clock.set_now(killed_at + dt.timedelta(minutes=1))
    assert scheduler.run_job("envoi_courriels", at=NOW).rows_changed == 0
    assert smtp_inbox.messages == []
    clock.set_now(killed_at + LEASE + dt.timedelta(seconds=1))
    assert scheduler.run_job("envoi_courriels", at=NOW).rows_changed == 1
    assert [m["Message-ID"] for m in smtp_inbox.messages] == [f"<outbound-{message_id}@localhost>"]
    db.session.expire_all()
    stored = db.session.get(OutboundMessage, message_id)
    assert (stored.status, stored.claim_token, stored.claimed_until) == ("envoye", None, None)
