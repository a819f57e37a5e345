"""Scheduled work: the job runner, its single-runner lock and the APScheduler setup.

* A job is a plain function ``fn(*, at, batch_size, dry_run) -> JobResult`` over the
  database (see ``backoffice/jobs.py``, where the schedule is listed in one place). It
  selects due rows in SQL, commits per batch, and is safe to run twice: a second run at
  the same instant changes nothing and sends nothing twice.
* ``run_job(name, at=…)`` records a ``JobRun`` (start, end, rows seen and changed,
  summary, error) and logs a French summary. Inside the job, ``clock.now()`` is ``at``.
  While it runs, a heartbeat (``tasks.Heartbeat``) is written every few seconds: a run
  whose process was killed (kill -9) or could not even record its failure (« database is
  locked ») stops beating and is marked « Interrompue » by the sweep of any runner
  (``backoffice/tasks.py``); the next run, idempotent, does the rest of its work.
* « Lancer maintenant » does not run the job in the web request: it queues it
  (``tasks.enqueue``) and a runner executes it through ``run_queued``. The
  ``backoffice scheduler`` process also runs the task queue (a thread of its own), as do
  ``backoffice worker`` processes and the scheduler embedded in ``make run``.
* Only one process runs the schedule: ``backoffice scheduler`` holds a PostgreSQL
  advisory lock (on SQLite, an exclusive lock on ``instance/scheduler.lock``) for its
  whole life; a second scheduler finds the lock taken and stops. Misfired runs are
  coalesced, with a grace time long enough that a restart does not drop a daily job.
"""
from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import traceback
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from sqlalchemy import text, update

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import JobRun, JobRunStatus

log = logging.getLogger("backoffice.scheduler")

ADVISORY_LOCK_KEY = 73_410_2026  # arbitrary, constant: "the back office scheduler"
MISFIRE_GRACE_SECONDS = 12 * 3600


@dataclasses.dataclass
class JobResult:
    seen: int = 0
    changed: int = 0
    summary: str = ""


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    label: str
    func: Callable[..., JobResult]
    cron: dict  # APScheduler cron trigger fields, Europe/Paris
    schedule_text: str  # the schedule in French


class UnknownJob(Exception):
    pass


def jobs() -> dict[str, Job]:
    from backoffice.jobs import SCHEDULE

    return {job.name: job for job in SCHEDULE}


def job_or_error(name: str) -> Job:
    job = jobs().get(name)
    if job is None:
        raise UnknownJob(f"Tâche inconnue « {name} » (connues : {', '.join(jobs())}).")
    return job


def run_job(name: str, *, at=None, batch_size: int = 500, dry_run: bool = False) -> JobRun:
    """Run one job for the instant ``at`` (default: now), here and now, and record it."""
    from backoffice import tasks

    job = job_or_error(name)
    run = JobRun(job=name, run_for=at or clock.now(), started_at=clock.now(), dry_run=dry_run,
                 status=JobRunStatus.EN_COURS, runner=tasks.runner_identity(),
                 heartbeat_at=clock.lease_now(), attempts=1)
    db.session.add(run)
    db.session.commit()
    run_id = run.id
    with tasks.Heartbeat(run_id):
        return _execute(job, run_id, batch_size=batch_size)


def run_queued(run_id: int, _payload) -> None:
    """A runner executes a job queued by « Lancer maintenant » (its heartbeat beats)."""
    run = db.session.get(JobRun, run_id)
    _execute(job_or_error(run.job), run_id, batch_size=500)


def _execute(job: Job, run_id: int, *, batch_size: int) -> JobRun:
    run = db.session.get(JobRun, run_id)
    at, dry_run = run.run_for, run.dry_run
    db.session.commit()
    try:
        with clock.running_at(at):
            result = job.func(at=at, batch_size=batch_size, dry_run=dry_run)
        summary = (("À blanc : " if dry_run else "") + result.summary) or None
        outcome = {"status": JobRunStatus.SUCCES, "rows_seen": result.seen,
                   "rows_changed": result.changed, "summary": summary}
        log.info("%s : %s", job.label, summary)
    except Exception as exc:  # recorded, then the scheduler goes on with other jobs
        outcome = {"status": JobRunStatus.ECHEC,
                   "error": "".join(traceback.format_exception_only(exc)).strip()[:4000]}
        log.exception("%s : échec", job.label)
    # A transaction that starts with this write (no read first: on SQLite, a read
    # transaction cannot become a write one once another process has committed). If even
    # this fails (e.g. "database is locked"), the heartbeat stops with the run and the
    # sweep marks it « Interrompue ».
    db.session.rollback()
    db.session.execute(update(JobRun).where(JobRun.id == run_id)
                       .values(**outcome, ended_at=clock.now())
                       .execution_options(synchronize_session=False))
    db.session.commit()
    return db.session.get(JobRun, run_id, populate_existing=True)


# -- one runner -----------------------------------------------------------------------------
class SchedulerLock:
    """Held by the one process that runs the schedule."""

    def __init__(self, app: Flask):
        self.app = app
        self._connection = None
        self._file = None

    def acquire(self) -> bool:
        with self.app.app_context():
            engine = db.engine
            if engine.dialect.name == "postgresql":
                # A connection of its own, out of the pool: closing it ends the session,
                # which releases the lock even if unlock is never reached (crash).
                self._connection = engine.connect()
                self._connection.detach()
                got = self._connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}).scalar()
                self._connection.commit()
                if not got:
                    self._connection.close()
                    self._connection = None
                return bool(got)
        path = Path(self.app.instance_path) / "scheduler.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a+")  # noqa: SIM115  (held open for the process lifetime)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            return False
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()
        return True

    def release(self) -> None:
        if self._connection is not None:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                     {"key": ADVISORY_LOCK_KEY})
            self._connection.close()
            self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def build_scheduler(app: Flask, *, background: bool):
    """An APScheduler scheduler with every job of the schedule (times in Europe/Paris)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    cls = BackgroundScheduler if background else BlockingScheduler
    scheduler = cls(timezone=clock.PARIS, job_defaults={
        "coalesce": True, "misfire_grace_time": MISFIRE_GRACE_SECONDS, "max_instances": 1})
    for job in jobs().values():
        scheduler.add_job(_run_in_app, "cron", args=(app, job.name), id=job.name,
                          name=job.label, **job.cron)
    return scheduler


def _run_in_app(app: Flask, name: str) -> None:
    with app.app_context():
        run_job(name)
        db.session.remove()


def next_run_times(at=None) -> dict:
    """When each job runs next (for the admin screen), without a running scheduler."""
    from apscheduler.triggers.cron import CronTrigger

    at = at or clock.now()
    return {job.name: CronTrigger(timezone=clock.PARIS, **job.cron).get_next_fire_time(None, at)
            for job in jobs().values()}


def start_embedded(app: Flask):
    """``make run``: the scheduler and a runner of the task queue in the web process, if
    no other process runs the schedule."""
    from backoffice import tasks

    lock = SchedulerLock(app)
    if not lock.acquire():
        app.logger.warning("Un autre processus exécute déjà les tâches planifiées.")
        return None
    scheduler = build_scheduler(app, background=True)
    scheduler.start()
    runner = tasks.Runner(app)
    runner.start_thread()
    app.extensions["scheduler"] = (scheduler, lock, runner)
    return scheduler

