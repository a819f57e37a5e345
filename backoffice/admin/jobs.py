"""Admin screen « Tâches planifiées »: every job with its schedule, next run, last runs
(counts, duration, error) and « Lancer maintenant »."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose
from sqlalchemy import func, select

from backoffice import scheduler
from backoffice.admin.base import STAFF, SecureIndexView
from backoffice.extensions import db
from backoffice.models import JobRun

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
        return self.render("admin/jobs.html", jobs=scheduler.jobs().values(), runs=runs,
                           next_runs=scheduler.next_run_times())

    @expose("/lancer/", methods=("POST",))
    def run_now(self):
        name = request.form.get("job", "")
        try:
            run = scheduler.run_job(name)
        except scheduler.UnknownJob as error:
            flash(str(error), "error")
        else:
            if run.status == "echec":
                flash(f"{scheduler.jobs()[name].label} : échec — {run.error}", "error")
            else:
                flash(f"{scheduler.jobs()[name].label} : {run.summary}", "success")
        return redirect(url_for(".index"))


def register(admin) -> None:
    admin.add_view(JobsView(name="Tâches planifiées", endpoint="taches", category="Suivi"))
