"""Admin screen « Règles » (/admin/regles/), for policy owners (``responsable_regles``)
and platform admins: moderators get 403.

* the list of rule sets, each with its active version, rules (message, severity, field,
  parameters) and parameters;
* **Modifier**: the rule file in a textarea. **Essayer** runs the edited text against
  chosen objects or all of them, next to the active version, and shows the difference
  with its progress; nothing is saved. **Activer** stores it as a new ``RuleSetVersion``
  (who, when, comment) that every worker picks up without restart, once the file is
  valid and its examples pass. An invalid edit is refused with its errors and the active
  version does not change;
* **Historique**: every version, a diff between any two (difflib), **Revenir** to an
  earlier one (stored as a new version, so the history says who went back and why).

The edited text is untrusted: this module never parses, registers nor evaluates it.
Essayer, Activer and Revenir queue a run that a runner executes in a limited child
process (``backoffice.rules_tryout``) and answer at once with a page that polls the run
(« Vérification en cours… », then the result); at most ``RULES_MAX_CONCURRENT_TRYOUTS``
runs at once, beyond which the request is refused (429) with a French message.
"""
from __future__ import annotations

import difflib

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from sqlalchemy import select

from backoffice import clock, rules_engine, rules_tryout
from backoffice.admin.base import SecureIndexView
from backoffice.extensions import db
from backoffice.facts import SCHEMAS
from backoffice.models import JobRun, JobRunStatus, StaffRole


MAX_FILE_BYTES = 200_000  # a rule file is a few tens of kilobytes


class RulesView(BaseView):
    roles = (StaffRole.ADMIN, StaffRole.RESPONSABLE_REGLES)
    is_accessible = SecureIndexView.is_accessible
    inaccessible_callback = SecureIndexView.inaccessible_callback

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _ruleset_or_404(name: str) -> rules_engine.RuleSet:
        if name not in rules_engine.RULESETS:
            abort(404)
        return rules_engine.current(name)

    def _edit_page(self, name: str, content: str, *, errors=(), comment: str = "",
                   references: str = "", run=None, status: int = 200):
        ruleset = self._ruleset_or_404(name)
        return self.render("admin/rules/edit.html", ruleset=ruleset, content=content,
                           errors=list(errors), comment=comment, references=references,
                           run=run, subjects=rules_tryout.subjects_text(name),
                           schema=SCHEMAS[name]), status

    # -- pages ---------------------------------------------------------------------------------
    @expose("/")
    def index(self):
        rulesets = [rules_engine.current(name) for name in rules_engine.RULESETS]
        return self.render("admin/rules/index.html", rulesets=rulesets,
                           invalid={r.name: rules_engine.invalid_active_version(r.name)
                                    for r in rulesets})

    @expose("/<jeu>/")
    def ruleset(self, jeu: str):
        ruleset = self._ruleset_or_404(jeu)
        active = next((v for v in rules_engine.history(jeu) if v.active), None)
        return self.render("admin/rules/ruleset.html", ruleset=ruleset, active=active,
                           schema=SCHEMAS[jeu],
                           invalid=rules_engine.invalid_active_version(jeu),
                           deadlines={key: rules_engine.duration(key)
                                      for key in ruleset.deadlines}
                           if jeu == "deadlines" else {})

    @expose("/<jeu>/modifier", methods=("GET", "POST"))
    def edit(self, jeu: str):
        ruleset = self._ruleset_or_404(jeu)
        if request.method == "GET":
            return self._edit_page(jeu, ruleset.content)[0]
        content = request.form.get("content", "").replace("\r\n", "\n")
        comment = request.form.get("comment", "")
        references = request.form.get("references", "")
        action = request.form.get("action")
        if action not in ("essayer", "activer"):
            abort(400)
        if len(content.encode("utf-8")) > MAX_FILE_BYTES:
            return self._edit_page(jeu, content[:MAX_FILE_BYTES], errors=[
                f"Le fichier dépasse {MAX_FILE_BYTES // 1000} ko : il n'a pas été lu."],
                comment=comment, references=references, status=413)
        if action == "activer" and not comment.strip():
            return self._edit_page(jeu, content, errors=[
                "Indiquez un commentaire : il explique la version dans l'historique."],
                comment=comment, references=references, status=422)
        # The text is read only by the child process (rules_tryout): the page polls it.
        try:
            if action == "essayer":
                run = rules_tryout.start_tryout(
                    jeu, content, references=rules_tryout.parse_references(references),
                    author=current_user)
            else:
                run = rules_tryout.start_activation(jeu, content, author=current_user,
                                                    comment=comment.strip())
        except rules_tryout.TryoutError as error:
            return self._edit_page(jeu, content, errors=[error.message], comment=comment,
                                   references=references, status=error.status)
        return self._edit_page(jeu, content, comment=comment, references=references,
                               run=run)

    @expose("/<jeu>/essais/<int:run_id>")
    def tryout(self, jeu: str, run_id: int):
        """A try-out or an activation: the whole page, or (``?format=json``) its state and
        the HTML fragment the page polls. Never parses a rule file."""
        if jeu not in rules_engine.RULESETS:
            abort(404)
        # Read on a connection of its own: the child process updates this row, and the
        # request's session may hold an older snapshot.
        with db.engine.connect() as connection:
            run = connection.execute(select(JobRun.__table__)
                                     .where(JobRun.id == run_id)).first()
        if run is None or run.job not in rules_tryout.JOBS:
            abort(404)
        state = rules_tryout.state_of(run)
        if state.get("jeu") != jeu:
            abort(404)
        stalled = False
        if run.status == JobRunStatus.EN_COURS:
            stalled = (clock.now() - run.started_at).total_seconds() > \
                rules_tryout.limits().wall + rules_tryout.STALL_GRACE_SECONDS
        elif run.status == JobRunStatus.SUCCES and state.get("mode") == "activation":
            rules_engine.invalidate(jeu)  # this worker applies the new version at once
        status = JobRunStatus.ECHEC if stalled else run.status
        finished = status not in (JobRunStatus.EN_ATTENTE, JobRunStatus.EN_COURS)
        fragment = self.render("admin/rules/tryout.html", run=run, state=state,
                               stalled=stalled, finished=finished, jeu=jeu,
                               title=rules_engine.RULESET_TITLES[jeu])
        if request.args.get("format") == "json":
            return {"status": status, "traites": state.get("traites"),
                    "total": state.get("total"), "html": fragment}
        return self.render("admin/rules/run.html", run=run, jeu=jeu, fragment=fragment,
                           finished=finished, title=rules_engine.RULESET_TITLES[jeu])

    @expose("/<jeu>/historique")
    def history(self, jeu: str):
        ruleset = self._ruleset_or_404(jeu)
        return self.render("admin/rules/history.html", ruleset=ruleset,
                           versions=rules_engine.history(jeu))

    @expose("/<jeu>/diff")
    def diff(self, jeu: str):
        ruleset = self._ruleset_or_404(jeu)
        versions = {v.version: v for v in rules_engine.history(jeu)}
        try:
            old = versions[request.args.get("de", type=int)]
            new = versions[request.args.get("a", type=int)]
        except KeyError:
            flash("Choisissez deux versions existantes.", "error")
            return redirect(url_for(".history", jeu=jeu))
        lines = list(difflib.unified_diff(
            old.content.splitlines(), new.content.splitlines(),
            fromfile=f"version {old.version}", tofile=f"version {new.version}", lineterm=""))
        return self.render("admin/rules/diff.html", ruleset=ruleset, old=old, new=new,
                           lines=lines)

    @expose("/<jeu>/revenir", methods=("POST",))
    def revert(self, jeu: str):
        """Go back to an earlier version: checked again in a child process (the validator
        may have changed since), then stored as a new version; the run's page follows it."""
        self._ruleset_or_404(jeu)
        version = request.form.get("version", type=int)
        target = next((v for v in rules_engine.history(jeu) if v.version == version), None)
        if target is None:
            flash("Cette version n'existe pas.", "error")
            return redirect(url_for(".history", jeu=jeu))
        if target.active:
            flash(f"La version {version} est déjà la version active.", "error")
            return redirect(url_for(".history", jeu=jeu))
        try:
            run = rules_tryout.start_activation(jeu, target.content, author=current_user,
                                                comment=request.form.get("comment", ""),
                                                revert_to=version)
        except rules_tryout.TryoutError as error:
            flash(error.message, "error")
            return redirect(url_for(".history", jeu=jeu))
        return redirect(url_for(".tryout", jeu=jeu, run_id=run.id))


def register(admin) -> None:
    admin.add_view(RulesView(name="Règles", endpoint="regles", url="regles"))

