"""Admin screen « Règles » (/admin/regles/), for policy owners (``responsable_regles``)
and platform admins: moderators get 403.

* the list of rule sets, each with its active version, rules (message, severity, field,
  parameters) and parameters;
* **Modifier**: the rule file in a textarea. **Essayer** validates the edited text, then
  runs it in a child process against chosen objects or all of them, next to the active
  version, and shows the difference with its progress (``rules_tryout``); nothing is
  saved. **Activer** validates, replays the examples in a child process, and stores a new
  ``RuleSetVersion`` (who, when, comment) that every worker picks up without restart. An
  invalid edit is refused with its errors and the active version does not change;
* **Historique**: every version, a diff between any two (difflib), **Revenir** to an
  earlier one (stored as a new version, so the history says who went back and why).
"""
from __future__ import annotations

import difflib

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

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
        if len(content.encode("utf-8")) > MAX_FILE_BYTES:
            return self._edit_page(jeu, content[:MAX_FILE_BYTES], errors=[
                f"Le fichier dépasse {MAX_FILE_BYTES // 1000} ko : il n'a pas été lu."],
                comment=comment, references=references, status=413)
        try:
            rules_engine.parse(content, source=f"{jeu} (version modifiée)", expected_name=jeu)
        except rules_engine.RuleFileError as error:
            return self._edit_page(jeu, content, errors=[str(p) for p in error.problems],
                                   comment=comment, references=references, status=422)
        if action == "essayer":
            try:
                run = rules_tryout.start(jeu, content,
                                         references=rules_tryout.parse_references(references),
                                         author=current_user)
            except rules_tryout.TryoutError as error:
                return self._edit_page(jeu, content, errors=[error.message], comment=comment,
                                       references=references, status=422)
            return self._edit_page(jeu, content, comment=comment, references=references,
                                   run=run)
        if action == "activer":
            return self._activate(jeu, content, comment, references)
        abort(400)

    def _activate(self, name: str, content: str, comment: str, references: str):
        if not comment.strip():
            return self._edit_page(name, content, errors=[
                "Indiquez un commentaire : il explique la version dans l'historique."],
                comment=comment, references=references, status=422)
        result = rules_tryout.check(name, content)
        if not result.ok:
            return self._edit_page(name, content, errors=list(result.problems),
                                   comment=comment, references=references, status=422)
        try:
            row = rules_engine.activate(name, content, author=current_user, comment=comment)
            db.session.commit()
        except rules_engine.RulesError as error:
            db.session.rollback()
            return self._edit_page(name, content, errors=[error.message], comment=comment,
                                   references=references, status=422)
        except IntegrityError:
            db.session.rollback()
            return self._edit_page(name, content, errors=[
                "Une autre version vient d'être activée en même temps : rechargez la page "
                "et recommencez."], comment=comment, references=references, status=409)
        rules_engine.invalidate(name)
        flash(f"Version {row.version} de « {rules_engine.RULESET_TITLES[name]} » activée : "
              "elle s'applique maintenant partout.", "success")
        return redirect(url_for(".ruleset", jeu=name))

    @expose("/<jeu>/essais/<int:run_id>")
    def tryout(self, jeu: str, run_id: int):
        self._ruleset_or_404(jeu)
        # Read on a connection of its own: the child process updates this row, and the
        # request's session may hold an older snapshot.
        with db.engine.connect() as connection:
            run = connection.execute(select(JobRun.__table__)
                                     .where(JobRun.id == run_id)).first()
        if run is None or run.job != rules_tryout.JOB_NAME:
            abort(404)
        state = rules_tryout.state_of(run)
        if state.get("jeu") != jeu:
            abort(404)
        stalled = False
        if run.status == JobRunStatus.EN_COURS:
            timeout = float(self._config("RULES_TRYOUT_TIMEOUT",
                                         rules_tryout.DEFAULT_TRYOUT_TIMEOUT))
            stalled = (clock.now() - run.started_at).total_seconds() > timeout + 120
        fragment = self.render("admin/rules/tryout.html", run=run, state=state,
                               stalled=stalled, finished=run.status != JobRunStatus.EN_COURS
                               or stalled)
        if request.args.get("format") == "json":
            return {"status": "echec" if stalled else run.status,
                    "traites": state.get("traites"), "total": state.get("total"),
                    "html": fragment}
        return fragment

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
        self._ruleset_or_404(jeu)
        version = request.form.get("version", type=int)
        target = next((v for v in rules_engine.history(jeu) if v.version == version), None)
        if target is None:
            flash("Cette version n'existe pas.", "error")
            return redirect(url_for(".history", jeu=jeu))
        result = rules_tryout.check(jeu, target.content)
        if not result.ok:
            flash(f"La version {version} ne peut plus être activée : {result.message}", "error")
            return redirect(url_for(".history", jeu=jeu))
        try:
            row = rules_engine.revert(jeu, version, author=current_user,
                                      comment=request.form.get("comment", ""))
            db.session.commit()
        except rules_engine.RulesError as error:
            db.session.rollback()
            flash(error.message, "error")
            return redirect(url_for(".history", jeu=jeu))
        except IntegrityError:
            db.session.rollback()
            flash("Une autre version vient d'être activée en même temps : recommencez.",
                  "error")
            return redirect(url_for(".history", jeu=jeu))
        rules_engine.invalidate(jeu)
        flash(f"Retour à la version {version} : c'est maintenant la version {row.version}, "
              "active partout.", "success")
        return redirect(url_for(".history", jeu=jeu))

    @staticmethod
    def _config(key: str, default):
        from flask import current_app
        return current_app.config.get(key, default)


def register(admin) -> None:
    admin.add_view(RulesView(name="Règles", endpoint="regles", url="regles"))

