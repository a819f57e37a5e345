"""Try an edited rule file on real data — in a child process.

durable-rules' C core can kill the process it runs in (segfaults are documented in
``DURABLE_RULES.md``). An edited rule file is therefore never registered in a web worker
before it has run elsewhere:

* ``check(name, content)`` (used by **Activer**) runs ``python -m backoffice.rules_tryout
  verifier <name>``: the child validates the file, registers it in its own durable-rules
  host and replays its example cases, then answers in JSON on stdout. A crash is reported
  as a refusal ("le moteur de règles s'est arrêté brutalement…").
* ``start(name, content, …)`` (used by **Essayer**) records a ``JobRun`` (``essai_regles``,
  dry run) and starts ``python -m backoffice.rules_tryout superviser <job id>``. The
  supervisor runs the worker (``travailler``) as its own child and, if the worker dies
  (signal, error, time limit), marks the run failed with a French explanation. The worker
  evaluates the active version and the edited one on the chosen objects (or all of
  them), writes its progress in the ``JobRun`` every batch, and finally the difference:
  "12 formations ne passeraient plus : …".

The edited text travels on stdin (never in a temporary file); the worker gets the
database URL and the clock instant of the web request through ``BACKOFFICE_TRYOUT``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from backoffice import clock

JOB_NAME = "essai_regles"
ENV_VAR = "BACKOFFICE_TRYOUT"
BATCH_SIZE = 100
MAX_LISTED = 100  # objects listed per category in the result (counts are exact)
CHECK_TIMEOUT = 120
DEFAULT_TRYOUT_TIMEOUT = 3600


class TryoutError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# -- what a try-out runs on ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Subject:
    """A kind of object a rule set applies to, for try-outs."""

    key: str
    singular: str
    plural: str
    model_name: str
    all_query: Callable[[], Any]
    lookup: Callable[[list[str]], tuple[list[int], list[str]]]
    options: tuple = ()
    published_states: tuple[str, ...] = ()

    @property
    def model(self):
        from backoffice import models
        return getattr(models, self.model_name)


def _formations_all():
    from backoffice.models import Formation, FormationState
    return select(Formation.id).where(Formation.state != FormationState.SUPPRIMEE)


def _candidatures_all():
    from backoffice.models import Candidature, CandidatureState
    return select(Candidature.id).where(Candidature.state.in_((
        CandidatureState.BROUILLON, CandidatureState.EN_ATTENTE_VALIDATION,
        CandidatureState.EN_ATTENTE_AVIS)))


def _candidates_all():
    from backoffice.models import Candidate
    return select(Candidate.id).where(Candidate.anonymised_at.is_(None))


def _lookup(model_name: str, with_reference: bool):
    def lookup(tokens: list[str]) -> tuple[list[int], list[str]]:
        from backoffice.extensions import db
        from backoffice import models

        model = getattr(models, model_name)
        found, missing = [], []
        for token in tokens:
            query = None
            if with_reference:
                query = select(model.id).where(model.reference == token)
            ident = db.session.scalar(query) if query is not None else None
            if ident is None and token.isdigit() and len(token) < 9:
                ident = db.session.scalar(select(model.id).where(model.id == int(token)))
            if ident is None:
                missing.append(token)
            elif ident not in found:
                found.append(ident)
        return found, missing
    return lookup


def _formation_options():
    from backoffice.models import Formation, Session
    return (selectinload(Formation.sessions).selectinload(Session.commune),
            selectinload(Formation.structure), selectinload(Formation.organisme_formateur),
            selectinload(Formation.certification))


def _candidature_options():
    from backoffice.models import Candidature, Session
    return (selectinload(Candidature.candidate), selectinload(Candidature.entry_point),
            selectinload(Candidature.session).selectinload(Session.formation),
            selectinload(Candidature.session).selectinload(Session.entry_points))


FORMATIONS = Subject("formations", "formation", "formations", "Formation", _formations_all,
                     _lookup("Formation", True), published_states=(
                         "validee", "modifiee", "en_attente_moderation"))
CANDIDATURES = Subject("candidatures", "candidature", "candidatures", "Candidature",
                       _candidatures_all,
                       _lookup("Candidature", True))
CANDIDATES = Subject("candidats", "candidat", "candidats", "Candidate", _candidates_all,
                     _lookup("Candidate", False))

SUBJECTS: dict[str, tuple[Subject, ...]] = {
    "publication": (FORMATIONS,),
    "cursus_eligibility": (CANDIDATURES,),
    "candidature_limits": (CANDIDATURES,),
    "duplicates": (CANDIDATES, FORMATIONS),
    "deadlines": (CANDIDATURES, FORMATIONS, CANDIDATES),
}


def subjects_text(name: str) -> str:
    return ", ".join(s.plural for s in SUBJECTS.get(name, ()))


def parse_references(text: str) -> list[str]:
    tokens = [t.strip() for t in text.replace(",", " ").replace(";", " ").split()]
    return list(dict.fromkeys(t for t in tokens if t))


# -- child processes ----------------------------------------------------------------------------
def _child_environment(app) -> dict[str, str]:
    config = {
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "RULES_DIR": str(app.config.get("RULES_DIR") or ""),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "NIR_ENCRYPTION_KEY": app.config.get("NIR_ENCRYPTION_KEY"),
        "TESTING": bool(app.config.get("TESTING")),
        "RULES_TRYOUT_TIMEOUT": app.config.get("RULES_TRYOUT_TIMEOUT"),
        "at": clock.now().isoformat(),
    }
    env = dict(os.environ)
    env[ENV_VAR] = json.dumps(config)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def _signal_text(returncode: int) -> str:
    if returncode >= 0:
        return f"code de sortie {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "inconnu"
    return f"signal {-returncode}, {name}"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    ok: bool
    problems: tuple[str, ...] = ()
    examples: tuple[dict, ...] = ()

    @property
    def message(self) -> str:
        return "\n".join(self.problems)


def check_command(name: str) -> list[str]:
    return [sys.executable, "-m", "backoffice.rules_tryout", "verifier", name]


def check(name: str, content: str, *, timeout: float = CHECK_TIMEOUT) -> CheckResult:
    """Validate, register and replay the examples of ``content`` in a child process."""
    from flask import current_app

    command = check_command(name)
    try:
        completed = subprocess.run(command, input=content, capture_output=True, text=True,
                                   timeout=timeout, env=_child_environment(current_app),
                                   check=False)
    except subprocess.TimeoutExpired:
        return CheckResult(False, (f"La vérification n'a pas abouti en {timeout:.0f} s : "
                                   "une règle boucle-t-elle ?",))
    if completed.returncode != 0:
        if completed.returncode < 0:
            text = (f"Le moteur de règles s'est arrêté brutalement en chargeant cette version "
                    f"({_signal_text(completed.returncode)}) : elle ne peut pas être activée.")
        else:
            tail = completed.stderr.strip().splitlines()[-1:] or [""]
            text = f"La vérification a échoué ({_signal_text(completed.returncode)}) : {tail[0]}"
        return CheckResult(False, (text,))
    answer = json.loads(completed.stdout)
    return CheckResult(answer["ok"], tuple(answer["problems"]), tuple(answer["examples"]))


def start(name: str, content: str, *, references: list[str], author) -> Any:
    """Record an ``essai_regles`` run and start it in a supervised child process."""
    from flask import current_app

    from backoffice.extensions import db
    from backoffice.models import JobRun, JobRunStatus

    uri = current_app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite") and (uri in ("sqlite://", "sqlite:///:memory:")
                                     or ":memory:" in uri):
        raise TryoutError("Essai impossible : la base de données est en mémoire, un autre "
                          "processus ne peut pas la lire.")
    state = {"jeu": name, "references": references, "auteur": author.full_name if author
             else None, "total": None, "traites": 0, "etape": "démarrage", "resultat": None}
    run = JobRun(job=JOB_NAME, run_for=clock.now(), started_at=clock.now(),
                 status=JobRunStatus.EN_COURS, dry_run=True, summary=json.dumps(state))
    db.session.add(run)
    db.session.commit()
    command = [sys.executable, "-m", "backoffice.rules_tryout", "superviser", str(run.id)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                               env=_child_environment(current_app))
    process.stdin.write(content)
    process.stdin.close()
    # Reap the supervisor when it ends (no zombie); the thread only waits.
    threading.Thread(target=process.wait, name=f"essai-regles-{run.id}", daemon=True).start()
    return run


def state_of(run) -> dict:
    try:
        return json.loads(run.summary or "{}")
    except ValueError:
        return {}


# -- the child side -----------------------------------------------------------------------------
def _child_app():
    from backoffice import create_app

    config = json.loads(os.environ[ENV_VAR])
    at = config.pop("at")
    clock.set_now(dt.datetime.fromisoformat(at))
    overrides = {k: v for k, v in config.items() if v not in (None, "")}
    return create_app(overrides)


def _verify(name: str, content: str) -> dict:
    from backoffice import rules_engine

    try:
        ruleset = rules_engine.parse(content, source=f"{name} (version modifiée)",
                                     expected_name=name)
        rules_engine.evaluate(ruleset, [])  # registers it in this process's host
    except rules_engine.RulesError as exc:
        return {"ok": False, "problems": exc.message.splitlines(), "examples": []}
    results = rules_engine.run_examples(ruleset)
    examples = [{"nom": r.example.name, "ok": r.ok, "detail": str(r)} for r in results]
    failed = [f"Exemple en échec — {r}" for r in results if not r.ok]
    return {"ok": not failed, "problems": failed, "examples": examples}


def _supervise(job_id: int, content: str, timeout: float,
               command: list[str] | None = None) -> str | None:
    """Run the worker; the French reason of its failure, or None when it ended normally."""
    command = command or [sys.executable, "-m", "backoffice.rules_tryout", "travailler",
                          str(job_id)]
    try:
        completed = subprocess.run(command, input=content, capture_output=True, text=True,
                                   timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"L'essai n'a pas abouti en {timeout:.0f} s : il a été arrêté."
    if completed.returncode == 0:
        return None
    if completed.returncode < 0:
        return (f"Le moteur de règles s'est arrêté brutalement pendant l'essai "
                f"({_signal_text(completed.returncode)}) : cette version ne peut pas être "
                "activée.")
    lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
    return f"L'essai a échoué ({_signal_text(completed.returncode)}) : " + \
        (lines[-1] if lines else "erreur inconnue")


def _finish(job_id: int, *, error: str | None = None, result: dict | None = None) -> None:
    from backoffice.extensions import db
    from backoffice.models import JobRun, JobRunStatus

    db.session.rollback()
    run = db.session.get(JobRun, job_id)
    if run is None or run.status != JobRunStatus.EN_COURS:
        return
    state = state_of(run)
    state["etape"] = "terminé"
    if result is not None:
        state["resultat"] = result
    run.summary = json.dumps(state)
    run.status = JobRunStatus.ECHEC if error else JobRunStatus.SUCCES
    run.error = error
    run.ended_at = clock.now()
    db.session.commit()


def _work(job_id: int, content: str) -> None:
    from backoffice import rules_engine
    from backoffice.extensions import db
    from backoffice.models import JobRun

    run = db.session.get(JobRun, job_id)
    state = state_of(run)
    name = state["jeu"]

    def save(**changes):
        state.update(changes)
        run.summary = json.dumps(state)
        db.session.commit()

    verification = _verify(name, content)
    if verification["problems"] and not verification["examples"]:
        _finish(job_id, error="\n".join(verification["problems"]))
        return
    edited = rules_engine.parse(content, source=f"{name} (version modifiée)",
                                expected_name=name)
    active = rules_engine.current(name)
    subjects = SUBJECTS[name]
    references = state.get("references") or []
    plans, missing = [], []
    for subject in subjects:
        if references:
            ids, not_found = subject.lookup(references)
            missing.append(set(not_found))
        else:
            ids = list(db.session.scalars(subject.all_query().order_by(subject.model.id)))
        plans.append((subject, ids))
    not_found = sorted(set.intersection(*missing)) if missing else []
    total = sum(len(ids) for _, ids in plans)
    save(total=total, etape="évaluation", traites=0)

    at = clock.now()
    done = 0
    results = []
    for subject, ids in plans:
        summary = _SubjectResult(subject)
        for start_index in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start_index:start_index + BATCH_SIZE]
            objects = db.session.scalars(
                select(subject.model).options(*_options(subject))
                .where(subject.model.id.in_(chunk)).order_by(subject.model.id)).all()
            for obj in objects:
                facts = rules_engine.facts_for(name, obj, at=at)
                before = rules_engine.evaluate(active, facts)
                after = rules_engine.evaluate(edited, facts)
                summary.add(obj, before, after)
            done += len(chunk)
            db.session.expunge_all()
            run = db.session.get(JobRun, job_id)
            save(traites=done)
        results.append(summary.as_dict())
    result = {"version_active": active.version_label, "exemples": verification["examples"],
              "exemples_en_echec": verification["problems"], "introuvables": not_found,
              "sujets": results}
    run.rows_seen = done
    run.rows_changed = sum(r["nb_ne_passeraient_plus"] + r["nb_passeraient_desormais"]
                           + r["nb_messages_changes"] for r in results)
    db.session.commit()
    _finish(job_id, result=result)


def _options(subject: Subject) -> tuple:
    if subject is FORMATIONS:
        return _formation_options()
    if subject is CANDIDATURES:
        return _candidature_options()
    return ()


def describe(obj) -> tuple[str, str]:
    """A line naming ``obj`` and the French label of its state."""
    from backoffice.models import (Candidate, Candidature, CandidatureState, Formation,
                                   FormationState)

    if isinstance(obj, Formation):
        return (f"{obj.reference} — {obj.intitule}",
                FormationState.labels().get(obj.state, obj.state))
    if isinstance(obj, Candidature):
        return (f"{obj.reference} — {obj.candidate.nom.upper()} {obj.candidate.prenom}",
                CandidatureState.labels().get(obj.state, obj.state))
    if isinstance(obj, Candidate):
        return f"n° {obj.id} — {obj.nom.upper()} {obj.prenom}", ""
    return str(obj), ""


class _SubjectResult:
    def __init__(self, subject: Subject):
        self.subject = subject
        self.total = 0
        self.unchanged = 0
        self.lists: dict[str, list] = {"ne_passeraient_plus": [], "passeraient_desormais": [],
                                       "messages_changes": []}
        self.counts = dict.fromkeys(self.lists, 0)
        self.published_failing = 0

    def add(self, obj, before: Iterable, after: Iterable) -> None:
        self.total += 1
        before, after = list(before), list(after)
        blocked_before = any(v.blocking for v in before)
        blocked_after = any(v.blocking for v in after)
        old = {(v.rule_id, v.message) for v in before}
        new = {(v.rule_id, v.message) for v in after}
        if not blocked_before and blocked_after:
            category = "ne_passeraient_plus"
            if getattr(obj, "state", None) in self.subject.published_states:
                self.published_failing += 1
        elif blocked_before and not blocked_after:
            category = "passeraient_desormais"
        elif old != new:
            category = "messages_changes"
        else:
            self.unchanged += 1
            return
        self.counts[category] += 1
        if len(self.lists[category]) < MAX_LISTED:
            label, state = describe(obj)
            self.lists[category].append({
                "objet": label, "etat": state,
                "nouveaux": [f"{m} ({r})" for r, m in sorted(new - old)],
                "disparus": [f"{m} ({r})" for r, m in sorted(old - new)]})

    def as_dict(self) -> dict:
        return {"libelle": self.subject.plural, "libelle_singulier": self.subject.singular,
                "total": self.total,
                "inchanges": self.unchanged, "publiees_en_echec": self.published_failing,
                **{f"nb_{k}": v for k, v in self.counts.items()}, **self.lists}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] not in ("verifier", "superviser", "travailler"):
        print("usage : python -m backoffice.rules_tryout verifier <jeu> | superviser <essai> "
              "| travailler <essai>", file=sys.stderr)
        return 2
    command, argument = argv
    content = sys.stdin.read()
    if command == "verifier":
        print(json.dumps(_verify(argument, content)))
        return 0
    if command == "superviser":
        config = json.loads(os.environ.get(ENV_VAR, "{}"))
        timeout = float(config.get("RULES_TRYOUT_TIMEOUT") or DEFAULT_TRYOUT_TIMEOUT)
        error = _supervise(int(argument), content, timeout)
        if error is None:
            return 0
        with _child_app().app_context():
            _finish(int(argument), error=error)  # only if the worker left it running
        return 1
    app = _child_app()
    with app.app_context():
        _work(int(argument), content)
    return 0


if __name__ == "__main__":
    sys.exit(main())
