"""Benchmark of the outbound queue: delivery rate of the e-mail and hub jobs, and the delay
from a message's queuing to its delivery given the scheduler's cadence.

Usage::

    python benchmarks/queues.py [DATABASE_URL] [--emails 5000] [--hub 5000] [--senders 1,2,4]
                                [--smtp-delay 0] [--hub-delay 0]

DATABASE_URL defaults to the environment variable of the same name, else a new SQLite file
in a temporary folder; the tables are created if missing. The database must hold no message
waiting to be sent (the jobs would send it too); the messages the script queues are deleted
at the end. For each channel and each number of concurrent senders, the script queues N
messages as the application does (``notifications.queue_email`` with the « transition »
template, ``notifications.queue_hub_message`` with a candidature payload), then runs the
job (``jobs.send_emails``, ``jobs.deliver_hub_messages``) in that many threads at once —
the scheduler's run and « Lancer maintenant » together — against a real SMTP server
(aiosmtpd) and a real HTTP endpoint (``http.server``) on loopback, and checks that every
message arrived exactly once. It prints the delivery rate (messages/s) and, for a burst of
N messages queued at once, the delay to delivery: the job starts at its next run (cron of
``jobs.SCHEDULE``: up to one cadence later, half of it on average), then the message
arrives when its turn comes in the run. ``--smtp-delay``/``--hub-delay`` make the receiver
take that many seconds per message, as a remote server does.

Mesure de la file des messages sortants : débit d'envoi (messages/s) des courriels et du
hub avec 1, 2 et 4 expéditeurs simultanés, et délai entre la mise en file et la remise.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import http.server
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KEY_PREFIX = "benchmark-queues:"


@dataclasses.dataclass
class Benchmark:
    """The object the benchmark's messages are « related » to (``related_type``)."""
    id: int


class Arrivals:
    """When each message reached the receiver (monotonic seconds), by its stable key."""

    def __init__(self, delay: float):
        self.delay = delay
        self.times: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def record(self, key: str) -> None:
        with self._lock:
            self.times.setdefault(key, []).append(time.monotonic())


class TimedInbox(Arrivals):
    """An aiosmtpd handler recording the Message-ID of each e-mail and when it came."""

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        for line in envelope.content.decode(errors="replace").splitlines():
            if line.lower().startswith("message-id:"):
                self.record(line.split(":", 1)[1].strip())
                break
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_hub(arrivals: Arrivals, port: int) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            if arrivals.delay:
                time.sleep(arrivals.delay)
            arrivals.record(self.headers["Idempotency-Key"])
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def cadence(job_name: str) -> dt.timedelta:
    """The time between two runs of ``job_name`` (its cron in ``jobs.SCHEDULE``)."""
    from apscheduler.triggers.cron import CronTrigger

    from backoffice import clock
    from backoffice.jobs import SCHEDULE

    job = next(job for job in SCHEDULE if job.name == job_name)
    trigger = CronTrigger(timezone=clock.PARIS, **job.cron)
    first = trigger.get_next_fire_time(None, dt.datetime(2027, 3, 10, 9, 0, 30, tzinfo=clock.UTC))
    return trigger.get_next_fire_time(first, first + dt.timedelta(microseconds=1)) - first


def queue(channel: str, count: int) -> list[str]:
    """Queue ``count`` messages as the application does; their stable delivery keys."""
    from backoffice import clock, notifications
    from backoffice.extensions import db
    from backoffice.jobs import hub_idempotency_key, message_id_header

    transition = SimpleNamespace(label="Retenir")
    messages = []
    for i in range(count):
        if channel == "email":
            messages.append(notifications.queue_email(
                f"of{i}@exemple.fr", "transition", subject="Candidature : Retenir",
                idempotency_key=f"{KEY_PREFIX}email:{i}", related=Benchmark(i),
                description=f"la candidature 3000000{i:05d} de Élodie MARTIN (session 10000042)",
                transition=transition, state_label="Retenue", reason=None,
                at=clock.format_local(clock.now())))
        else:
            messages.append(notifications.queue_hub_message(notifications.hub_payload(
                event="retenir", state="retenue", reference=f"3000000{i:05d}", at=clock.now(),
                session="10000042", formation="202600000042", dispositif="conventionne_region",
                reason=None, identifiant_france_travail="1234567A", identifiant_regional=None,
                nom="Martin", prenom="Élodie", date_naissance=dt.date(1995, 5, 17),
                prescriber_siret="44306184100047"), related=Benchmark(i),
                idempotency_key=f"{KEY_PREFIX}hub:{i}"))
        if i % 500 == 499:
            db.session.commit()
    db.session.commit()
    key = message_id_header if channel == "email" else hub_idempotency_key
    return [key(message) for message in messages]


def delete_benchmark_messages() -> None:
    from sqlalchemy import delete

    from backoffice.extensions import db
    from backoffice.models import OutboundMessage

    db.session.execute(delete(OutboundMessage).where(
        OutboundMessage.idempotency_key.like(f"{KEY_PREFIX}%")))
    db.session.commit()


def run_senders(app, job, senders: int, batch_size: int) -> float:
    """Run ``job`` in ``senders`` threads released together; the start instant."""
    from backoffice import clock
    from backoffice.extensions import db

    at = clock.now()
    barrier, errors = threading.Barrier(senders + 1), []

    def sender():
        with app.app_context():
            barrier.wait()
            try:
                with clock.running_at(at):
                    job(at=at, batch_size=batch_size, dry_run=False)
            except Exception as error:  # reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"un expéditeur a échoué : {errors[0]!r}")
    return started


def measure(app, channel: str, count: int, senders: int, arrivals: Arrivals,
            batch_size: int) -> dict:
    from sqlalchemy import func, select

    from backoffice import jobs
    from backoffice.extensions import db
    from backoffice.models import MessageStatus, OutboundMessage

    with app.app_context():
        queued_at = time.monotonic()
        keys = queue(channel, count)
        queuing = time.monotonic() - queued_at
        arrivals.times.clear()
        job = jobs.send_emails if channel == "email" else jobs.deliver_hub_messages
        started = run_senders(app, job, senders, batch_size)
        ended = time.monotonic()
        not_sent = db.session.scalar(select(func.count()).select_from(OutboundMessage).where(
            OutboundMessage.idempotency_key.like(f"{KEY_PREFIX}%"),
            OutboundMessage.status != MessageStatus.ENVOYE))
        delete_benchmark_messages()
    duplicates = sum(len(times) - 1 for times in arrivals.times.values())
    lost = sum(key not in arrivals.times for key in keys)
    offsets = [min(times) - started for times in arrivals.times.values()]
    return {"queuing": queuing, "elapsed": ended - started, "duplicates": duplicates,
            "lost": lost, "not_sent": not_sent,
            "mean_offset": statistics.fmean(offsets) if offsets else 0.0,
            "max_offset": max(offsets, default=0.0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Débit de la file des messages sortants.")
    parser.add_argument("database_url", nargs="?", default=os.environ.get("DATABASE_URL"),
                        help="URL de la base (défaut : variable DATABASE_URL, sinon un "
                             "fichier SQLite temporaire)")
    parser.add_argument("--emails", type=int, default=5000, help="courriels (défaut 5000)")
    parser.add_argument("--hub", type=int, default=5000, help="messages au hub (défaut 5000)")
    parser.add_argument("--senders", default="1,2,4",
                        help="nombres d'expéditeurs simultanés (défaut 1,2,4)")
    parser.add_argument("--batch-size", type=int, default=500, help="lot des tâches (défaut 500)")
    parser.add_argument("--smtp-delay", type=float, default=0.0,
                        help="secondes par courriel côté serveur SMTP (défaut 0)")
    parser.add_argument("--hub-delay", type=float, default=0.0,
                        help="secondes par message côté hub (défaut 0)")
    parser.add_argument("--smtp-port", type=int, default=0,
                        help="port du serveur SMTP de mesure (défaut : un port libre)")
    parser.add_argument("--hub-port", type=int, default=0,
                        help="port du hub de mesure (défaut : un port libre)")
    args = parser.parse_args(argv)

    from aiosmtpd.controller import Controller
    from sqlalchemy import func, select

    from backoffice import create_app
    from backoffice.extensions import db
    from backoffice.models import MessageStatus, OutboundMessage

    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'queues.sqlite3'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        delete_benchmark_messages()  # left by an interrupted run
        waiting = db.session.scalar(select(func.count()).select_from(OutboundMessage).where(
            OutboundMessage.status == MessageStatus.EN_ATTENTE))
        shown_url = db.engine.url.render_as_string(hide_password=True)
    if waiting:
        print(f"La base contient {waiting} message(s) en attente : les tâches les enverraient "
              "aussi. Utilisez une base sans messages en attente.", file=sys.stderr)
        return 1

    inbox = TimedInbox(args.smtp_delay)
    smtp_port = args.smtp_port or free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hub_arrivals = Arrivals(args.hub_delay)
    hub = serve_hub(hub_arrivals, args.hub_port)
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_port,
                      SMTP_STARTTLS=False, SMTP_SSL=False, SMTP_USER="",
                      HUB_ENDPOINT_URL=f"http://127.0.0.1:{hub.server_address[1]}/messages")

    print(f"Base : {shown_url}")
    print(f"Lots de {args.batch_size} ; serveur SMTP {args.smtp_delay * 1000:g} ms par "
          f"courriel, hub {args.hub_delay * 1000:g} ms par message.\n")
    header = (f"{'file':<9} {'N':>6} {'exp.':>4} {'mise en file/s':>14} {'envoi s':>8} "
              f"{'messages/s':>10} {'doublons':>8} {'perdus':>6} {'délai moyen':>12} "
              f"{'délai max':>10}")
    print(header)
    print("-" * len(header))
    failures = 0
    plan = [("email", "envoi_courriels", args.emails, inbox),
            ("hub", "envoi_hub", args.hub, hub_arrivals)]
    try:
        for channel, job_name, count, arrivals in plan:
            if count <= 0:
                continue
            every = cadence(job_name).total_seconds()
            for senders in (int(n) for n in args.senders.split(",")):
                r = measure(app, channel, count, senders, arrivals, args.batch_size)
                failures += bool(r["duplicates"] or r["lost"] or r["not_sent"])
                # A burst queued at once: the next run starts within one cadence (half of it
                # on average), then each message arrives at its offset in the run.
                mean_delay, worst_delay = every / 2 + r["mean_offset"], every + r["max_offset"]
                print(f"{channel:<9} {count:>6} {senders:>4} {count / r['queuing']:>14.0f} "
                      f"{r['elapsed']:>8.1f} {count / r['elapsed']:>10.0f} "
                      f"{r['duplicates']:>8} {r['lost'] + r['not_sent']:>6} "
                      f"{mean_delay:>10.0f} s {worst_delay:>8.0f} s")
            print(f"{'':<9} ({job_name} : toutes les {every:g} s ; délai = attente de la "
                  f"prochaine exécution + rang dans l'envoi)")
    finally:
        smtp.stop()
        hub.shutdown()
        hub.server_close()
    if failures:
        print(f"\n{failures} mesure(s) avec des doublons ou des pertes.", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
