"""Admin screen « Tâches planifiées »: every job with its schedule, next run, last runs
(« En attente », « En cours » with the age of its heartbeat, « Succès », « Échec »,
« Interrompue », counts, duration, error) and « Lancer maintenant », which queues the job
for a runner (``backoffice/tasks.py``) and returns at once; the page refreshes itself
while a run is waiting or running (static/admin.js)."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from sqlalchemy import func, select

from backoffice import scheduler, tasks
from backoffice.admin.base import STAFF, SecureIndexView
from backoffice.extensions import db
from backoffice.models import JobRun, JobRunStatus

RUNS_SHOWN = 5


class JobsView(BaseView):
    roles = STAFF
    is_accessible = SecureIndexView.is_accessible
    inaccessible_callback = SecureIndexView.inaccessible_callback

    @expose("/")
    def index(self):
        ranked = select(JobRun, func.row_number().over(
            partition_by=JobRun.job, order_by=JobRun.started_at.desc()).label("rank")).subquery()
        recent = select(JobRun).join(ranked, ranked.c.id == JobRun.id).where(
            ranked.c.rank <= RUNS_SHOWN).order_by(JobRun.started_at.desc())
        runs: dict[str, list[JobRun]] = {}
        for run in db.session.scalars(recent):
            runs.setdefault(run.job, []).append(run)
        pending = any(run.status in (JobRunStatus.EN_ATTENTE, JobRunStatus.EN_COURS)
                      for job_runs in runs.values() for run in job_runs)
        return self.render("admin/jobs.html", jobs=scheduler.jobs().values(), runs=runs,
                           next_runs=scheduler.next_run_times(), pending=pending,
                           heartbeat_age=tasks.heartbeat_age,
                           statuses=JobRunStatus.labels())

    @expose("/lancer/", methods=("POST",))
    def run_now(self):
        name = request.form.get("job", "")
        try:
            job = scheduler.job_or_error(name)
        except scheduler.UnknownJob as error:
            flash(str(error), "error")
        else:
            tasks.enqueue(job.name, requested_by=current_user)
            flash(f"{job.label} : mise en file, elle démarre dans quelques secondes.", "success")
        return redirect(url_for(".index"))


def register(admin) -> None:
    admin.add_view(JobsView(name="Tâches planifiées", endpoint="taches", category="Suivi"))
