"""The task queue: long work as ``job_run`` rows executed by a runner process.

No long work runs in a web request: the request *enqueues* a task (a ``JobRun`` « En
attente », committed at once, with who asked and its input in ``payload``) and the page
that asked polls the row for its progress and result. A runner — the ``backoffice
scheduler`` process, any number of ``backoffice worker`` processes, or the scheduler
embedded in ``make run`` — polls the queue every ``POLL_SECONDS``:

* ``claim()``: one conditional UPDATE (``status = 'en_attente'`` → « En cours », with the
  runner's ``host:pid``) committed before the work starts: of several runners, exactly one
  gets a task.
* While a task or a scheduled job runs, a ``Heartbeat`` thread writes ``heartbeat_at``
  every ``TASK_HEARTBEAT_SECONDS``, in a short transaction of its own.
* ``sweep()``: a run « En cours » whose heartbeat is older than
  ``TASK_INTERRUPTED_AFTER_SECONDS`` lost its runner (kill -9, crash, a failure it could
  not even record). A scheduled job becomes « Interrompue »: jobs are idempotent and commit
  per batch, so the next run does the rest. A CSV import goes back to « En attente » and
  the next runner resumes it after the lines already committed (an « tout ou rien »
  import, which committed nothing, starts again), at most ``MAX_ATTEMPTS`` times, then
  « Échec ». A rule try-out or activation becomes « Interrompue » (run it again).

What each kind of task does is ``HANDLERS`` below; the payload is erased when the task ends.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import traceback

from flask import Flask, current_app
from sqlalchemy import func, select, update

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import JobRun, JobRunStatus

log = logging.getLogger("backoffice.tasks")

POLL_SECONDS = 1.5
MAX_ATTEMPTS = 3
FINAL = (JobRunStatus.SUCCES, JobRunStatus.ECHEC, JobRunStatus.INTERROMPUE)
# Tasks taken over from the start or from their committed progress when their runner died.
RESUMABLE = ("import_catalogue",)
INTERRUPTED_MESSAGE = ("Interrompue : le processus qui l'exécutait ({runner}) ne donne plus "
                       "signe de vie depuis le {since}.")
RESUMED_MESSAGE = INTERRUPTED_MESSAGE + " Reprise par un autre processus (tentative {attempt} " \
                                        "sur {attempts})."
GAVE_UP_MESSAGE = INTERRUPTED_MESSAGE + " Abandonnée après {attempts} tentatives."
FAILED_MESSAGE = "La tâche s'est arrêtée sur une erreur inattendue : {error}"


def pause_after_batch() -> None:
    """Called by long work after each committed batch: leave the database to the pages a
    moment (``TASK_BATCH_PAUSE_SECONDS``, 0 by default)."""
    seconds = float(current_app.config.get("TASK_BATCH_PAUSE_SECONDS") or 0)
    if seconds > 0:
        time.sleep(seconds)


def runner_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _handlers() -> dict:
    """What a runner does with each kind of task: ``handler(run_id, payload)``."""
    from backoffice import rules_tryout, scheduler
    from backoffice.services import catalogue

    return {**dict.fromkeys(scheduler.jobs(), scheduler.run_queued),
            catalogue.IMPORT_JOB: catalogue.run_import,
            **dict.fromkeys(rules_tryout.JOBS, rules_tryout.run_queued)}


# -- the web side ---------------------------------------------------------------------------
def enqueue(job: str, *, summary: str | None = None, payload: bytes | None = None,
            requested_by=None, dry_run: bool = False, run_for=None) -> int:
    """Queue a task (committed) and return its id at once: a runner will execute it.
    Nothing is read after the commit: an open read transaction would keep this session
    from seeing the runner's progress (SQLite)."""
    now = clock.now()
    run = JobRun(job=job, run_for=run_for or now, started_at=now, dry_run=dry_run,
                 status=JobRunStatus.EN_ATTENTE, summary=summary, payload=payload,
                 requested_by_id=getattr(requested_by, "id", None), attempts=0)
    db.session.add(run)
    db.session.flush()
    run_id = run.id
    db.session.commit()
    return run_id


def heartbeat_age(run: JobRun) -> float | None:
    """Seconds since the last heartbeat of a running task (for the screens)."""
    if run.status != JobRunStatus.EN_COURS or run.heartbeat_at is None:
        return None
    return max(0.0, (clock.lease_now() - run.heartbeat_at).total_seconds())


# -- the runner side ------------------------------------------------------------------------
def claim() -> int | None:
    """Take the oldest queued task for this runner; its id, or None when none is left.
    The conditional UPDATE is committed before anything runs: another runner that read
    the same id finds it no longer « En attente » and updates nothing."""
    ids = list(db.session.scalars(select(JobRun.id).where(
        JobRun.status == JobRunStatus.EN_ATTENTE).order_by(JobRun.id).limit(20)))
    db.session.commit()
    for run_id in ids:
        claimed = db.session.execute(
            update(JobRun).where(JobRun.id == run_id, JobRun.status == JobRunStatus.EN_ATTENTE)
            .values(status=JobRunStatus.EN_COURS, runner=runner_identity(),
                    heartbeat_at=clock.lease_now(), started_at=clock.now(), ended_at=None,
                    attempts=JobRun.attempts + 1)
            .execution_options(synchronize_session=False)).rowcount == 1
        db.session.commit()
        if claimed:
            return run_id
    return None


class Heartbeat:
    """``with Heartbeat(run_id):`` writes the run's ``heartbeat_at`` every
    ``TASK_HEARTBEAT_SECONDS`` from a thread of its own (its own connection, one short
    transaction per beat) while the block runs."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.engine = db.engine
        self.interval = float(current_app.config["TASK_HEARTBEAT_SECONDS"])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"heartbeat-{run_id}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.engine.begin() as connection:
                    connection.execute(update(JobRun).where(
                        JobRun.id == self.run_id, JobRun.status == JobRunStatus.EN_COURS)
                        .values(heartbeat_at=clock.lease_now()))
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("Battement de cœur de la tâche %s non écrit", self.run_id,
                            exc_info=True)


def execute(run_id: int) -> None:
    """Run the claimed task ``run_id`` with its heartbeat; an unexpected error ends it
    « Échec »; its payload is erased once it has ended."""
    run = db.session.get(JobRun, run_id)
    job, payload = run.job, run.payload
    db.session.commit()
    handler = _handlers().get(job)
    with Heartbeat(run_id):
        try:
            if handler is None:
                raise LookupError(f"tâche inconnue « {job} »")
            handler(run_id, payload)
        except Exception as exc:  # noqa: BLE001 - recorded on the run, the runner goes on
            log.exception("Tâche %s (%s) en échec", run_id, job)
            db.session.rollback()
            error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
            db.session.execute(update(JobRun).where(
                JobRun.id == run_id, JobRun.status == JobRunStatus.EN_COURS)
                .values(status=JobRunStatus.ECHEC, ended_at=clock.now(),
                        error=FAILED_MESSAGE.format(error=error))
                .execution_options(synchronize_session=False))
            db.session.commit()
    db.session.commit()  # each write below starts its own transaction (SQLite: see scheduler)
    db.session.execute(update(JobRun).where(JobRun.id == run_id, JobRun.status.in_(FINAL))
                       .values(payload=None).execution_options(synchronize_session=False))
    db.session.commit()


def sweep() -> int:
    """Detect the runs whose runner died (heartbeat older than the limit) and take over
    their work (see the module docstring); the number of runs found."""
    now = clock.lease_now()
    limit = now - dt.timedelta(seconds=float(
        current_app.config["TASK_INTERRUPTED_AFTER_SECONDS"]))
    last_sign = func.coalesce(JobRun.heartbeat_at, JobRun.started_at)
    stale = list(db.session.execute(select(
        JobRun.id, JobRun.job, JobRun.runner, JobRun.attempts, JobRun.heartbeat_at,
        JobRun.started_at).where(JobRun.status == JobRunStatus.EN_COURS, last_sign < limit)))
    db.session.commit()
    for run_id, job, runner, attempts, heartbeat_at, started_at in stale:
        since = clock.format_local(heartbeat_at or started_at, "%d/%m/%Y à %H:%M:%S")
        words = {"runner": runner or "inconnu", "since": since, "attempt": attempts + 1,
                 "attempts": MAX_ATTEMPTS}
        if job in RESUMABLE and attempts < MAX_ATTEMPTS:
            values = {"status": JobRunStatus.EN_ATTENTE, "runner": None, "heartbeat_at": None,
                      "error": RESUMED_MESSAGE.format(**words)}
        elif job in RESUMABLE:
            values = {"status": JobRunStatus.ECHEC, "ended_at": clock.now(), "payload": None,
                      "error": GAVE_UP_MESSAGE.format(**words)}
        else:
            values = {"status": JobRunStatus.INTERROMPUE, "ended_at": clock.now(),
                      "payload": None, "error": INTERRUPTED_MESSAGE.format(**words)}
        changed = db.session.execute(
            update(JobRun).where(JobRun.id == run_id, JobRun.status == JobRunStatus.EN_COURS,
                                 last_sign < limit).values(**values)
            .execution_options(synchronize_session=False)).rowcount
        db.session.commit()
        if changed:
            log.warning("Tâche %s (%s) : %s", run_id, job, values["error"])
    return len(stale)


def run_once(app: Flask) -> bool:
    """One turn of a runner: sweep, then claim and execute one task; whether it ran one."""
    with app.app_context():
        try:
            sweep()
            run_id = claim()
            if run_id is None:
                return False
            execute(run_id)
            return True
        finally:
            db.session.remove()


def run_pending(app: Flask) -> int:
    """Execute queued tasks until none is left (tests, and ``backoffice worker --once``)."""
    count = 0
    while run_once(app):
        count += 1
    return count


class Runner:
    """The loop of a runner process (or of a thread of the scheduler's process)."""

    def __init__(self, app: Flask):
        self.app = app
        self.stopping = threading.Event()

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                worked = run_once(self.app)
            except Exception:  # noqa: BLE001 - e.g. the database is away: try again later
                log.exception("File des tâches : erreur, nouvel essai dans un instant")
                worked = False
            if not worked:
                self.stopping.wait(POLL_SECONDS)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, daemon=True, name="task-runner")
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
