"""Edited rule files run only in limited child processes: validation, try-out, activation.

An edited rule file is untrusted text: a crafted YAML file can keep the parser busy, a
rule can send durable-rules' C core into an endless loop (in registration, out of reach
of the engine's own watchdog) or kill the process it runs in (``DURABLE_RULES.md``).
The web process therefore never parses, registers nor evaluates it. Every use of an
edited text — **Essayer**, **Activer** and **Revenir** of the « Règles » screen — is a
``JobRun`` queued here (``backoffice/tasks.py``, the text in its payload, erased when
it ends); the web request returns at once, a runner process starts the supervisor, and
the page polls the run for its progress and result.

* ``start_tryout(name, content, …)`` records an ``essai_regles`` run (dry run);
  ``start_activation(name, content, …)`` an ``activation_regles`` run. At most
  ``RULES_MAX_CONCURRENT_TRYOUTS`` (2) of them run at once, counted in the database
  (so across every web worker and server): the run is inserted and committed first,
  then the running ones are counted; above the limit it is deleted again and
  ``TryoutError`` says « Trop d'essais en cours, réessayez dans quelques minutes »
  (queued runs count as running).
  Requests racing for the last place may all be refused, never one too many admitted.
  A run older than the wall-clock limit plus two minutes no longer counts (its
  supervisor died).
* The runner (``run_queued``) starts ``python -m backoffice.rules_tryout superviser <run>``
  with the text on its stdin and waits for it; the supervisor starts the
  worker (``travailler <run>``) as its own child under resource limits set before it
  executes (``preexec_fn``): ``RLIMIT_CPU`` (``RULES_CHILD_CPU_SECONDS``), ``RLIMIT_AS``
  (``RULES_CHILD_MEMORY_MB``), no core file, and an ``alarm`` a little after the
  wall-clock limit (``RULES_CHILD_WALL_SECONDS``), at which the supervisor kills it
  anyway. A worker that dies (limit, signal, error) leaves the run failed with a French
  reason: « Arrêté : limite de temps dépassée (… s). », « Arrêté : limite de mémoire
  dépassée (… Mo). », « Le moteur de règles s'est arrêté brutalement (signal 11,
  SIGSEGV)… ». The supervisor itself never reads the text; it only passes it on.
* The worker validates the file, registers it in its own durable-rules host (a file that
  needs more than ``MAX_LOAD_SECONDS`` of CPU for that is refused: once active, every
  web worker loads it) and replays its examples. A try-out then evaluates the active
  version and the edited one on the chosen objects (or all of them), writing its
  progress every batch, and finally the difference: "12 formations ne passeraient
  plus : …". An activation stores the new
  ``RuleSetVersion`` only when the file is valid and every example passes, in the same
  transaction that marks the run succeeded, and only while the run (locked) is still
  running: a version is activated exactly once, never after the run was given up.

The edited text travels on stdin (never in a temporary file); the children get the
database URL, the limits and the clock instant of the web request (``run_for``) through
``BACKOFFICE_TRYOUT``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import selectinload

from backoffice import clock

JOB_NAME = "essai_regles"
ACTIVATION_JOB = "activation_regles"
JOBS = (JOB_NAME, ACTIVATION_JOB)
ENV_VAR = "BACKOFFICE_TRYOUT"
BATCH_SIZE = 100
MAX_LISTED = 100  # objects listed per category in the result (counts are exact)
STALL_GRACE_SECONDS = 120  # a run this long past the wall-clock limit has lost its supervisor
EXIT_MEMORY = 3  # the worker's exit code when it ran out of memory
# Once active, a version is parsed and registered by every web worker: a file that takes
# longer than this to load (CPU seconds, in the worker) is refused.
MAX_LOAD_SECONDS = 5.0
BUSY_MESSAGE = "Trop d'essais en cours, réessayez dans quelques minutes."
CONCURRENT_MESSAGE = ("Une autre version vient d'être activée en même temps : rechargez la "
                      "page et recommencez.")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a worker may use: wall-clock seconds, CPU seconds, address space (MiB)."""

    wall: float = 600.0
    cpu: int = 300
    memory_mb: int = 1024

    @classmethod
    def from_config(cls, config: Mapping) -> Limits:
        default = cls()
        return cls(wall=float(config.get("RULES_CHILD_WALL_SECONDS") or default.wall),
                   cpu=int(config.get("RULES_CHILD_CPU_SECONDS") or default.cpu),
                   memory_mb=int(config.get("RULES_CHILD_MEMORY_MB") or default.memory_mb))


class TryoutError(Exception):
    """A run that cannot start; ``status`` is the HTTP answer (429: too many at once)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.message = message
        self.status = status


# -- what a try-out runs on -------------------------------------------------------------------
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


# -- starting a run (web side: never reads the text) ------------------------------------------
def _child_environment(app, at: dt.datetime) -> dict[str, str]:
    config = {
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "RULES_DIR": str(app.config.get("RULES_DIR") or ""),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "NIR_ENCRYPTION_KEY": app.config.get("NIR_ENCRYPTION_KEY"),
        "TESTING": bool(app.config.get("TESTING")),
        "RULES_CHILD_WALL_SECONDS": app.config.get("RULES_CHILD_WALL_SECONDS"),
        "RULES_CHILD_CPU_SECONDS": app.config.get("RULES_CHILD_CPU_SECONDS"),
        "RULES_CHILD_MEMORY_MB": app.config.get("RULES_CHILD_MEMORY_MB"),
        "at": at.isoformat(),
    }
    env = dict(os.environ)
    env[ENV_VAR] = json.dumps(config)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def limits() -> Limits:
    from flask import current_app
    return Limits.from_config(current_app.config)


def running_count() -> int:
    """Try-outs and activations queued or running now, in every process (stalled ones
    excluded)."""
    from backoffice.extensions import db
    from backoffice.models import JobRun, JobRunStatus

    since = clock.now() - dt.timedelta(seconds=limits().wall + STALL_GRACE_SECONDS)
    return db.session.scalar(select(func.count()).select_from(JobRun).where(
        JobRun.job.in_(JOBS),
        JobRun.status.in_((JobRunStatus.EN_ATTENTE, JobRunStatus.EN_COURS)),
        JobRun.started_at >= since))


def start_tryout(name: str, content: str, *, references: list[str], author) -> Any:
    """Record an ``essai_regles`` run of ``content`` and start it in the background."""
    return _start(JOB_NAME, content, {"jeu": name, "mode": "essai", "references": references},
                  author)


def start_activation(name: str, content: str, *, author, comment: str,
                     revert_to: int | None = None) -> Any:
    """Record an ``activation_regles`` run: ``content`` becomes the active version of
    ``name`` if the child finds it valid with every example passing (``revert_to``: the
    earlier version it is, for **Revenir**)."""
    return _start(ACTIVATION_JOB, content, {"jeu": name, "mode": "activation",
                                            "commentaire": comment, "retour_a": revert_to},
                  author)


def _start(job: str, content: str, state: dict, author) -> Any:
    from flask import current_app

    from backoffice import tasks
    from backoffice.extensions import db
    from backoffice.models import JobRun

    uri = current_app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite") and (uri in ("sqlite://", "sqlite:///:memory:")
                                     or ":memory:" in uri):
        raise TryoutError("Essai impossible : la base de données est en mémoire, un autre "
                          "processus ne peut pas la lire.")
    state = {**state, "auteur": author.full_name if author else None,
             "auteur_id": author.id if author else None, "total": None, "traites": 0,
             "etape": "vérification", "resultat": None, "problemes": []}
    run_id = tasks.enqueue(job, summary=json.dumps(state), payload=content.encode("utf-8"),
                           requested_by=author, dry_run=job == JOB_NAME)
    # Counted after our own commit: of several requests racing past the limit, the last
    # to commit sees them all and gives up (some may give up needlessly; none too many).
    admitted = running_count() <= int(current_app.config.get("RULES_MAX_CONCURRENT_TRYOUTS",
                                                             2))
    db.session.rollback()  # on SQLite a write after a read in one transaction may fail
    if not admitted:
        db.session.execute(delete(JobRun).where(JobRun.id == run_id))
        db.session.commit()
        raise TryoutError(BUSY_MESSAGE, status=429)
    return db.session.get(JobRun, run_id)


def run_queued(run_id: int, payload: bytes) -> None:
    """The task (run by a runner): start the supervisor with the text on its stdin, for
    the instant the run was asked for, and wait for it (the heartbeat beats meanwhile)."""
    from flask import current_app

    from backoffice.extensions import db
    from backoffice.models import JobRun

    at = db.session.get(JobRun, run_id).run_for
    db.session.commit()
    command = [sys.executable, "-m", "backoffice.rules_tryout", "superviser", str(run_id)]
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, text=True,
                                   start_new_session=True,
                                   env=_child_environment(current_app, at))
        process.stdin.write(payload.decode("utf-8"))
        process.stdin.close()
    except OSError as exc:
        _finish(run_id, error=f"Le processus d'essai n'a pas pu démarrer : {exc}")
        return
    process.wait()
    _finish(run_id, error="Le processus d'essai s'est arrêté sans donner de résultat.")


def state_of(run) -> dict:
    try:
        return json.loads(run.summary or "{}")
    except ValueError:
        return {}


# -- the supervisor: runs the worker under limits ---------------------------------------------
def _set_limit(kind: int, soft: int, hard: int) -> None:
    _, current_hard = resource.getrlimit(kind)
    if current_hard != resource.RLIM_INFINITY:  # an unprivileged process cannot raise it
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(kind, (soft, hard))


def _limiter(limits: Limits) -> Callable[[], None]:
    """Run in the worker between fork and exec: its CPU, memory and time limits."""
    def apply() -> None:
        _set_limit(resource.RLIMIT_CPU, limits.cpu, limits.cpu + 5)  # SIGXCPU, then SIGKILL
        memory = limits.memory_mb * 1024 * 1024
        _set_limit(resource.RLIMIT_AS, memory, memory)
        _set_limit(resource.RLIMIT_CORE, 0, 0)
        signal.alarm(math.ceil(limits.wall) + 5)  # kept across exec: if the supervisor dies
    return apply


def worker_command(job_id: int) -> list[str]:
    return [sys.executable, "-m", "backoffice.rules_tryout", "travailler", str(job_id)]


def _signal_text(returncode: int) -> str:
    if returncode >= 0:
        return f"code de sortie {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "inconnu"
    return f"signal {-returncode}, {name}"


def _supervise(job_id: int, content: str, limits: Limits,
               command: list[str] | None = None) -> str | None:
    """Run the worker under ``limits``; the French reason of its failure, or None."""
    try:
        completed = subprocess.run(command or worker_command(job_id), input=content,
                                   capture_output=True, text=True, timeout=limits.wall,
                                   preexec_fn=_limiter(limits), check=False)
    except subprocess.TimeoutExpired:  # the worker has been killed
        return f"Arrêté : limite de temps dépassée ({limits.wall:g} s)."
    return _failure(completed.returncode, completed.stderr, limits)


def _failure(returncode: int, stderr: str, limits: Limits) -> str | None:
    lines = [line for line in (stderr or "").strip().splitlines() if line.strip()]
    if returncode == 0:
        return None
    if returncode == -signal.SIGXCPU:
        return f"Arrêté : limite de temps dépassée ({limits.cpu} s de calcul)."
    if returncode == -signal.SIGALRM:
        return f"Arrêté : limite de temps dépassée ({limits.wall:g} s)."
    if returncode == EXIT_MEMORY or (lines and lines[-1].startswith("MemoryError")):
        return f"Arrêté : limite de mémoire dépassée ({limits.memory_mb} Mo)."
    if returncode < 0:
        return (f"Le moteur de règles s'est arrêté brutalement ({_signal_text(returncode)}) : "
                "cette version ne peut pas être activée.")
    return f"La vérification a échoué ({_signal_text(returncode)}) : " + \
        (lines[-1] if lines else "erreur inconnue")


def _lock_running(job_id: int):
    """The run ``job_id``, locked, if it is still running (None otherwise: it has ended or
    was given up, and nothing may change it any more)."""
    from backoffice.extensions import db
    from backoffice.models import JobRun, JobRunStatus

    db.session.rollback()
    run = db.session.execute(select(JobRun).where(JobRun.id == job_id)
                             .with_for_update()).scalar_one_or_none()
    if run is None or run.status != JobRunStatus.EN_COURS:
        db.session.rollback()
        return None
    return run


def _finish(job_id: int, *, error: str | None = None, result: dict | None = None,
            problems: list[str] | None = None) -> None:
    """End a run that is still running (a finished run is left as it is)."""
    from backoffice.extensions import db
    from backoffice.models import JobRunStatus

    run = _lock_running(job_id)
    if run is None:
        return
    state = state_of(run)
    state["etape"] = "terminé"
    if result is not None:
        state["resultat"] = result
    if problems:
        state["problemes"] = list(problems)
    run.summary = json.dumps(state)
    run.status = JobRunStatus.ECHEC if error else JobRunStatus.SUCCES
    run.error = error
    run.ended_at = clock.now()
    db.session.commit()


# -- the worker: the only place where the edited text is read ---------------------------------
def _child_app():
    from backoffice import create_app

    config = json.loads(os.environ[ENV_VAR])
    at = config.pop("at")
    clock.set_now(dt.datetime.fromisoformat(at))
    overrides = {k: v for k, v in config.items() if v not in (None, "")}
    return create_app(overrides)


def _verify(name: str, content: str) -> dict:
    """Validate, register and replay the examples: ``valid`` (the file is well formed and
    the engine takes it), ``problems`` (why it cannot be activated), ``examples``."""
    from backoffice import rules_engine

    started = time.process_time()
    try:
        ruleset = rules_engine.parse(content, source=f"{name} (version modifiée)",
                                     expected_name=name)
        rules_engine.evaluate(ruleset, [])  # registers it in this process's host
    except rules_engine.RulesError as exc:
        return {"valid": False, "problems": exc.message.splitlines(), "examples": []}
    load_seconds = time.process_time() - started
    if load_seconds > MAX_LOAD_SECONDS:  # once active, every web worker loads it
        return {"valid": False, "examples": [], "problems": [
            f"Le fichier demande {load_seconds:.1f} s de calcul pour être chargé "
            f"({MAX_LOAD_SECONDS:g} s au plus : chaque serveur le chargera) ; simplifiez-le."]}
    results = rules_engine.run_examples(ruleset)
    examples = [{"nom": r.example.name, "ok": r.ok, "detail": str(r)} for r in results]
    failed = [f"Exemple en échec — {r}" for r in results if not r.ok]
    return {"valid": True, "problems": failed, "examples": examples, "ruleset": ruleset}


def _work(job_id: int, content: str) -> None:
    from backoffice import rules_engine
    from backoffice.extensions import db
    from backoffice.models import JobRun

    state = state_of(db.session.get(JobRun, job_id))
    db.session.rollback()  # no transaction left open while the text is read
    name = state["jeu"]
    verification = _verify(name, content)
    if not verification["valid"]:
        _finish(job_id, error="Version refusée.", problems=verification["problems"])
    elif state.get("mode") == "activation":
        if verification["problems"]:
            _finish(job_id, error="Version refusée.", problems=verification["problems"])
        else:
            _activate(job_id, name, content, state)
    else:
        try:
            _tryout(job_id, name, verification)
        except rules_engine.RulesError as exc:  # e.g. the watchdog stopped an evaluation
            db.session.rollback()
            _finish(job_id, error=exc.message)


def _activate(job_id: int, name: str, content: str, state: dict) -> None:
    """Store the version and mark the run succeeded, in one transaction, once."""
    from sqlalchemy.exc import IntegrityError

    from backoffice import rules_engine
    from backoffice.extensions import db
    from backoffice.models import JobRunStatus, User

    run = _lock_running(job_id)
    if run is None:
        return
    author = db.session.get(User, state["auteur_id"]) if state.get("auteur_id") else None
    try:
        if state.get("retour_a"):
            row = rules_engine.revert(name, int(state["retour_a"]), author=author,
                                      comment=state.get("commentaire") or "")
        else:
            row = rules_engine.activate(name, content, author=author,
                                        comment=state.get("commentaire") or "")
        state.update(etape="terminé", resultat={"version": row.version})
        run.summary = json.dumps(state)
        run.status, run.ended_at = JobRunStatus.SUCCES, clock.now()
        run.rows_seen = run.rows_changed = 1
        db.session.commit()
    except rules_engine.RulesError as exc:
        db.session.rollback()
        _finish(job_id, error="Version refusée.", problems=[exc.message])
    except IntegrityError:
        db.session.rollback()
        _finish(job_id, error="Version refusée.", problems=[CONCURRENT_MESSAGE])


def _tryout(job_id: int, name: str, verification: dict) -> None:
    from backoffice import rules_engine
    from backoffice.extensions import db
    from backoffice.models import JobRun

    run = db.session.get(JobRun, job_id)
    state = state_of(run)

    def save(**changes):
        state.update(changes)
        run.summary = json.dumps(state)
        db.session.commit()

    edited = verification["ruleset"]
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
    if len(argv) != 2 or argv[0] not in ("superviser", "travailler") or \
            not argv[1].isdigit():
        print("usage : python -m backoffice.rules_tryout superviser <essai> "
              "| travailler <essai>", file=sys.stderr)
        return 2
    command, job_id = argv[0], int(argv[1])
    content = sys.stdin.read()
    if command == "superviser":
        limits = Limits.from_config(json.loads(os.environ.get(ENV_VAR, "{}")))
        error = _supervise(job_id, content, limits)
        if error is None:
            return 0
        with _child_app().app_context():
            _finish(job_id, error=error)  # only if the worker left it running
        return 1
    try:
        with _child_app().app_context():
            _work(job_id, content)
    except MemoryError:
        os._exit(EXIT_MEMORY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
