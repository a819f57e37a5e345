"""Workflow engine: states and transitions are data (``workflows/*.yaml``).

Every state change of the product goes through ``fire(obj, transition, actor=…)``:

1. the transition must exist, and the actor must be allowed to fire it *on that object*
   (``qui:`` of the transition: staff roles, profiles checked against the object's
   structure, ``auteur``, ``referent``, ``tiers``, ``gestionnaire``, ``systeme``;
   ``a & b`` means both) — checked first, so that a refusal tells nothing of the state;
2. the transition must start from the object's current state;
3. the guard rule sets (``regles:``) must pass: a blocking violation stops everything;
4. the state changes, the ``horodatage:`` columns get the current instant, a
   ``TransitionLog`` row is written and the side effects (``effets:``) are queued
   (messages in the outbound queue) — all in the caller's transaction;
5. the change is flushed: the ``version`` column makes a concurrent change of the same
   object fail with ``ConflictError`` instead of being silently overwritten.

The caller commits (one transaction per user action) or rolls back on error.

Definitions are validated at start-up (``init_app``): unknown state, unreachable state,
transition nobody may fire, unknown actor, rule set or side effect → ``WorkflowDefinitionError``
with a French message naming the file.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from sqlalchemy import insert, literal, null, select, update
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import (AccountRequest, AffiliationRequest, Candidature, Delegation,
                               Formation, Habilitation, HabilitationRole, HabilitationState,
                               Membership, OfProfile, PrescriberProfile, ReferencingRequest,
                               RequestState, Session, StaffRole, TransitionLog, User)

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "workflows"

MODELS = {model.__name__: model for model in (
    Formation, Session, Candidature, User, AccountRequest, AffiliationRequest,
    ReferencingRequest, Habilitation, Delegation)}


# -- errors ---------------------------------------------------------------------------
class WorkflowError(Exception):
    """A refused state change; ``message`` is French and meant for the user."""

    def __init__(self, message: str, violations: list | None = None):
        super().__init__(message)
        self.message = message
        self.violations = violations or []


class TransitionNotAllowed(WorkflowError):
    """The transition does not start from the object's current state."""


class PermissionDenied(WorkflowError):
    """The actor may not fire this transition on this object."""


class GuardFailed(WorkflowError):
    """A guard rule set reported blocking violations (in ``violations``)."""


class ConflictError(WorkflowError):
    """Someone else changed the object meanwhile."""


class WorkflowDefinitionError(Exception):
    """A workflow file is invalid (raised at start-up)."""


# -- definitions ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class State:
    code: str
    label: str
    final: bool = False


@dataclasses.dataclass(frozen=True)
class Transition:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str
    actors: tuple[tuple[str, ...], ...]  # alternatives, each a conjunction of conditions
    rulesets: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    timestamps: tuple[str, ...] = ()
    reason_required: bool = False

    @property
    def actors_text(self) -> str:
        return ", ".join(" et ".join(ACTOR_LABELS.get(c, c) for c in alt) for alt in self.actors)


@dataclasses.dataclass(frozen=True)
class Workflow:
    object_type: str
    model: type
    label: str
    initial: str
    states: dict[str, State]
    transitions: dict[str, Transition]
    path: Path

    def state_label(self, code: str | None) -> str:
        state = self.states.get(code or "")
        return state.label if state else (code or "")

    def transitions_from(self, state: str) -> list[Transition]:
        return [t for t in self.transitions.values() if state in t.sources]


ACTOR_LABELS = {
    "admin": "administrateur", "moderateur": "modérateur", "responsable_regles":
    "responsable des règles", "systeme": "tâche planifiée", "auteur": "l'auteur",
    "referent": "le référent de la structure", "tiers": "le tiers délégataire",
    "gestionnaire": "le gestionnaire du SIRET",
    **{p.value: p.label.lower() for p in OfProfile},
    **{p.value: p.label.lower() for p in PrescriberProfile},
}
ACTORS = set(ACTOR_LABELS)


# -- subjects: who an object belongs to ------------------------------------------------
def _of_structures(obj) -> set[int]:
    if isinstance(obj, Formation):
        return {obj.structure_id}
    if isinstance(obj, Session):
        return {obj.formation.structure_id} | ({obj.organisme_formateur_id} - {None})
    if isinstance(obj, Candidature):
        return _of_structures(obj.session)
    return set()


def _prescriber_structures(obj) -> set[int]:
    return {obj.prescriber_structure_id} if isinstance(obj, Candidature) else set()


def _referent_structures(obj) -> set[int]:
    if isinstance(obj, (AccountRequest, AffiliationRequest)):
        return {obj.structure_id}
    if isinstance(obj, User):
        pending = select(AccountRequest.structure_id).where(
            AccountRequest.user_id == obj.id, AccountRequest.state == RequestState.EN_ATTENTE)
        members = select(Membership.structure_id).where(Membership.user_id == obj.id)
        return set(db.session.scalars(pending)) | set(db.session.scalars(members))
    return set()


def _author_id(obj) -> int | None:
    if isinstance(obj, Candidature):
        return obj.prescriber_user_id
    if isinstance(obj, (AccountRequest, AffiliationRequest, Habilitation)):
        return obj.user_id
    if isinstance(obj, ReferencingRequest):
        return obj.requester_id
    if isinstance(obj, User):
        return obj.id
    return None


def _siret(obj) -> str | None:
    if isinstance(obj, Delegation):
        return obj.siret_etablissement
    if isinstance(obj, Habilitation):
        return obj.siret
    return None


def _memberships(actor: User) -> list[Membership]:
    return list(db.session.scalars(select(Membership).where(Membership.user_id == actor.id)))


def _condition_holds(condition: str, actor: User | None, obj, memberships) -> bool:
    if condition == "systeme":
        return actor is None
    if actor is None:
        return False
    if condition in StaffRole.__members__.values() or condition in {r.value for r in StaffRole}:
        return actor.staff_role == condition
    if condition in {p.value for p in OfProfile}:
        structures = _of_structures(obj)
        return any(m.profile_of == condition and m.structure_id in structures
                   for m in memberships)
    if condition in {p.value for p in PrescriberProfile}:
        structures = _prescriber_structures(obj)
        return any(m.profile_prescripteur == condition and m.structure_id in structures
                   for m in memberships)
    if condition == "auteur":
        return _author_id(obj) == actor.id
    if condition == "referent":
        structures = _referent_structures(obj)
        return any(m.is_referent and m.structure_id in structures for m in memberships)
    if condition == "tiers":
        return isinstance(obj, Delegation) and obj.email_tiers.lower() == actor.email
    if condition == "gestionnaire":
        siret = _siret(obj)
        return siret is not None and db.session.scalar(select(Habilitation.id).where(
            Habilitation.user_id == actor.id, Habilitation.siret == siret,
            Habilitation.role == HabilitationRole.GESTIONNAIRE,
            Habilitation.state == HabilitationState.ACTIVE).limit(1)) is not None
    return False


# -- registries: guards and side effects ------------------------------------------------
GuardFn = Callable[..., Iterable[Any]]
EffectFn = Callable[..., None]
_guards: dict[str, GuardFn] = {}
_effects: dict[str, EffectFn] = {}
_batch_effects: dict[str, EffectFn] = {}


def guard(name: str):
    """Register the function checking rule set ``name`` against an object:
    ``fn(obj, *, actor, transition) -> violations`` (each with ``severity`` and ``message``)."""

    def decorator(fn: GuardFn) -> GuardFn:
        _guards[name] = fn
        return fn
    return decorator


def side_effect(name: str):
    """Register a side effect: ``fn(obj, *, transition, actor, reason, log)``."""

    def decorator(fn: EffectFn) -> EffectFn:
        _effects[name] = fn
        return fn
    return decorator


def side_effect_many(name: str):
    """Register the set-based form of side effect ``name``, which ``fire_many`` runs
    instead of the per-object one: ``fn(model, logs, *, transition, reason, shared)``, with
    ``logs`` the ``{object id: (log id, at)}`` of the changed objects, in order, and
    ``shared`` a dict the effects of one batch may keep what they read in. It reads what
    it needs as plain rows (a constant number of queries per batch) and queues exactly the
    messages the per-object form would queue for each object."""

    def decorator(fn: EffectFn) -> EffectFn:
        _batch_effects[name] = fn
        return fn
    return decorator


def known_effects() -> set[str]:
    from backoffice import notifications  # noqa: F401  (registers the side effects)
    from backoffice.services import sessions  # noqa: F401  (fermer_sessions)
    return set(_effects)


# -- loading ------------------------------------------------------------------------------
_workflows: dict[str, Workflow] = {}
_by_model: dict[type, Workflow] = {}


def load_workflows(directory: Path = DEFAULT_DIRECTORY, rulesets: set[str] | None = None
                   ) -> dict[str, Workflow]:
    """Read and validate every ``*.yaml`` of ``directory``."""
    workflows = {}
    effects = known_effects()
    for path in sorted(directory.glob("*.yaml")):
        workflow = _parse(path, effects, rulesets)
        if workflow.object_type in workflows:
            raise WorkflowDefinitionError(
                f"{path.name} : l'objet « {workflow.object_type} » a déjà un workflow.")
        workflows[workflow.object_type] = workflow
    return workflows


def _parse(path: Path, effects: set[str], rulesets: set[str] | None) -> Workflow:
    def fail(message: str):
        raise WorkflowDefinitionError(f"Workflow {path.name} : {message}")

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        fail(f"YAML invalide ({exc})")
    if not isinstance(data, dict):
        fail("le fichier doit décrire un objet (objet, modele, etats, transitions).")
    for key in ("objet", "modele", "etat_initial", "etats", "transitions"):
        if key not in data:
            fail(f"la clé « {key} » est obligatoire.")
    model = MODELS.get(data["modele"])
    if model is None:
        fail(f"modèle inconnu « {data['modele']} » (connus : {', '.join(sorted(MODELS))}).")

    states: dict[str, State] = {}
    for item in data["etats"]:
        if not isinstance(item, dict) or "code" not in item or "libelle" not in item:
            fail(f"chaque état a un code et un libellé ({item!r}).")
        if item["code"] in states:
            fail(f"l'état « {item['code']} » est déclaré deux fois.")
        states[item["code"]] = State(item["code"], item["libelle"], bool(item.get("final")))
    allowed = _model_states(model)
    if set(states) != allowed:
        unknown, missing = set(states) - allowed, allowed - set(states)
        fail("les états doivent être ceux du modèle"
             + (f" ; inconnus : {', '.join(sorted(unknown))}" if unknown else "")
             + (f" ; manquants : {', '.join(sorted(missing))}" if missing else "") + ".")
    if data["etat_initial"] not in states:
        fail(f"état initial inconnu « {data['etat_initial']} ».")

    transitions: dict[str, Transition] = {}
    for item in data["transitions"]:
        name = item.get("nom")
        where = f"transition « {name} »"
        if not name or name in transitions:
            fail(f"{where} : nom absent ou en double.")
        for key in ("de", "vers", "qui", "libelle"):
            if key not in item:
                fail(f"{where} : la clé « {key} » est obligatoire.")
        sources = tuple(item["de"])
        for code in (*sources, item["vers"]):
            if code not in states:
                fail(f"{where} : état inconnu « {code} ».")
        for code in sources:
            if states[code].final:
                fail(f"{where} : part de l'état final « {code} ».")
        if not item["qui"]:
            fail(f"{where} : personne ne peut la déclencher (« qui » est vide).")
        actors = []
        for alternative in item["qui"]:
            conditions = tuple(part.strip() for part in str(alternative).split("&"))
            for condition in conditions:
                if condition not in ACTORS:
                    fail(f"{where} : acteur inconnu « {condition} » (connus : "
                         f"{', '.join(sorted(ACTORS))}).")
            actors.append(conditions)
        for ruleset in item.get("regles", []):
            if rulesets is not None and ruleset not in rulesets:
                fail(f"{where} : jeu de règles inconnu « {ruleset} ».")
        for effect in item.get("effets", []):
            if effect not in effects:
                fail(f"{where} : effet inconnu « {effect} » (connus : "
                     f"{', '.join(sorted(effects))}).")
        columns = set(model.__table__.c.keys())
        for column in item.get("horodatage", []):
            if column not in columns:
                fail(f"{where} : horodatage sur une colonne inconnue « {column} ».")
        transitions[name] = Transition(
            name=name, label=item["libelle"], sources=sources, target=item["vers"],
            actors=tuple(actors), rulesets=tuple(item.get("regles", [])),
            effects=tuple(item.get("effets", [])),
            timestamps=tuple(item.get("horodatage", [])),
            reason_required=bool(item.get("motif_obligatoire", False)))

    reachable = {data["etat_initial"]}
    changed = True
    while changed:
        changed = False
        for transition in transitions.values():
            if reachable & set(transition.sources) and transition.target not in reachable:
                reachable.add(transition.target)
                changed = True
    unreachable = set(states) - reachable
    if unreachable:
        fail(f"état(s) inaccessible(s) depuis « {data['etat_initial']} » : "
             f"{', '.join(sorted(unreachable))}.")
    return Workflow(object_type=data["objet"], model=model, label=data.get("libelle", data["objet"]),
                    initial=data["etat_initial"], states=states, transitions=transitions,
                    path=path)


def _model_states(model) -> set[str]:
    """The codes allowed by the model's state CHECK constraint."""
    import re

    for constraint in model.__table__.constraints:
        text = str(getattr(constraint, "sqltext", ""))
        if text.startswith("state IN"):
            return set(re.findall(r"'([^']+)'", text))
    raise WorkflowDefinitionError(f"le modèle {model.__name__} n'a pas de colonne d'état contrôlée")


def init_app(app: Flask, directory: Path | None = None) -> None:
    rules_dir = Path(app.config.get("RULES_DIR") or DEFAULT_DIRECTORY.parent / "rules")
    rulesets = {p.stem for p in rules_dir.glob("*.yaml")} | {p.stem for p in rules_dir.glob("*.json")}
    workflows = load_workflows(directory or app.config.get("WORKFLOWS_DIR") or DEFAULT_DIRECTORY,
                               rulesets=rulesets or None)
    _workflows.clear()
    _workflows.update(workflows)
    _by_model.clear()
    _by_model.update({w.model: w for w in workflows.values()})
    app.extensions["workflows"] = workflows


def workflows() -> dict[str, Workflow]:
    return dict(_workflows)


def workflow_for(obj_or_model) -> Workflow:
    model = obj_or_model if isinstance(obj_or_model, type) else type(obj_or_model)
    try:
        return _by_model[model]
    except KeyError:
        raise WorkflowError(f"aucun workflow pour {model.__name__}") from None


def has_workflow(model) -> bool:
    return model in _by_model


# -- firing -------------------------------------------------------------------------------
def may_fire(obj, transition: Transition, actor: User | None,
             memberships: list[Membership] | None = None) -> bool:
    if actor is not None and memberships is None:
        memberships = _memberships(actor)
    return any(all(_condition_holds(c, actor, obj, memberships) for c in alternative)
               for alternative in transition.actors)


def available_transitions(obj, actor: User | None) -> list[Transition]:
    """The transitions ``actor`` may fire on ``obj`` now (guards not evaluated)."""
    workflow = workflow_for(obj)
    memberships = _memberships(actor) if actor is not None else []
    return [t for t in workflow.transitions_from(obj.state)
            if may_fire(obj, t, actor, memberships)]


def check_guards(obj, transition: Transition, actor: User | None) -> list:
    """Every violation reported by the transition's rule sets (blocking and warnings)."""
    violations = []
    for name in transition.rulesets:
        check = _guards.get(name)
        if check is None:
            raise WorkflowError(f"Le jeu de règles « {name} » n'est pas disponible.")
        violations.extend(check(obj, actor=actor, transition=transition))
    return violations


def fire(obj, transition_name: str, *, actor: User | None, reason: str | None = None
         ) -> TransitionLog:
    """Change ``obj``'s state through ``transition_name``; see the module docstring."""
    workflow = workflow_for(obj)
    transition = workflow.transitions.get(transition_name)
    if transition is None:
        raise WorkflowError(f"Transition inconnue « {transition_name} » pour "
                            f"{workflow.label.lower()}.")
    # The right first: someone who may not act on the object learns nothing of its state.
    if not may_fire(obj, transition, actor):
        raise PermissionDenied(f"Vous n'avez pas le droit de faire « {transition.label} » "
                               f"sur cet objet.")
    current = obj.state
    if current not in transition.sources:
        raise TransitionNotAllowed(
            f"« {transition.label} » n'est pas possible : l'objet est à l'état "
            f"« {workflow.state_label(current)} ».")
    reason = (reason or "").strip() or None
    if transition.reason_required and not reason:
        raise WorkflowError(f"Un motif est obligatoire pour « {transition.label} ».")
    violations = check_guards(obj, transition, actor)
    blocking = [v for v in violations if getattr(v, "severity", "bloquant") == "bloquant"]
    if blocking:
        raise GuardFailed(f"« {transition.label} » est refusé : "
                          + " ; ".join(v.message for v in blocking), violations)

    now = clock.now()
    obj.state = transition.target
    flag_modified(obj, "state")  # a self-transition still bumps the version
    for column in transition.timestamps:
        setattr(obj, column, now)
    log = TransitionLog(object_type=workflow.object_type, object_id=obj.id,
                        transition=transition.name, from_state=current,
                        to_state=transition.target, actor_id=actor.id if actor else None,
                        at=now, reason=reason)
    db.session.add(log)
    try:
        db.session.flush()
    except StaleDataError:
        raise ConflictError("Cet objet vient d'être modifié par quelqu'un d'autre : "
                            "rechargez la page et recommencez.") from None
    for effect in transition.effects:
        _effects[effect](obj, transition=transition, actor=actor, reason=reason, log=log)
    db.session.flush()
    return log


def fire_many(model, rows, transition_name: str, *, reason: str | None = None,
              load=()) -> list[int]:
    """``fire(obj, transition_name, actor=None, reason=reason)`` on many rows of ``model``
    (``rows``: their ``(id, state)``, locked by the caller: ``FOR UPDATE`` on PostgreSQL,
    as the jobs' batches are), set-based for the scheduled jobs: one INSERT … SELECT of the
    ``TransitionLog`` rows of those still in a source state (their ``from_state`` read
    from the row, their ids returned), one UPDATE of the same rows (state, version,
    ``horodatage:`` columns); when the transition has side effects, each runs on the whole
    batch in its set-based form (``side_effect_many``: plain rows, a constant number of
    queries, the messages inserted in one statement) or, for an effect without one, the
    changed objects are loaded (with the loader options ``load``) and each effect runs on
    each, as ``fire`` does. Returns the ids changed; the others had left the source
    states. Only for a transition without guard rule sets (``WorkflowError`` otherwise:
    use ``fire``)."""
    rows = list(rows)
    workflow = workflow_for(model)
    transition = workflow.transitions.get(transition_name)
    if transition is None:
        raise WorkflowError(f"Transition inconnue « {transition_name} » pour "
                            f"{workflow.label.lower()}.")
    if transition.rulesets:
        raise WorkflowError(f"« {transition.label} » a des règles : une par une (fire).")
    if not rows:
        return []
    # The system's right does not depend on the object (``systeme`` is checked before the
    # object is read, and every other condition is false without an actor).
    if not may_fire(None, transition, None):
        raise PermissionDenied(f"Vous n'avez pas le droit de faire « {transition.label} » "
                               f"sur cet objet.")
    reason = (reason or "").strip() or None
    if transition.reason_required and not reason:
        raise WorkflowError(f"Un motif est obligatoire pour « {transition.label} ».")
    now = clock.now()
    due = (model.id.in_([ident for ident, _state in rows]), model.state.in_(transition.sources))
    # The log of each row still in a source state, its from_state read from the row: one
    # INSERT … SELECT, which returns the logs' ids (the effects' idempotency keys).
    log_ids = dict(db.session.execute(
        insert(TransitionLog).from_select(
            ["object_type", "object_id", "transition", "from_state", "to_state", "actor_id",
             "at", "reason"],
            select(literal(workflow.object_type, TransitionLog.object_type.type), model.id,
                   literal(transition.name, TransitionLog.transition.type), model.state,
                   literal(transition.target, TransitionLog.to_state.type),
                   null().label("actor_id"), literal(now, TransitionLog.at.type),
                   literal(reason, TransitionLog.reason.type))
            .where(*due).order_by(model.id))
        .returning(TransitionLog.object_id, TransitionLog.id)).all())
    if not log_ids:
        return []
    db.session.execute(
        update(model).where(*due)
        .values(state=transition.target, version=model.version + 1,
                **dict.fromkeys(transition.timestamps, now))
        .execution_options(synchronize_session=False))
    changed = [ident for ident, _state in rows if ident in log_ids]
    if not transition.effects:
        return changed
    from backoffice.notifications import keys_known

    with keys_known(model.__name__.lower(), changed):  # the effects' messages are about them
        if all(effect in _batch_effects for effect in transition.effects):
            # Set-based: each effect reads what it needs for the whole batch as plain rows.
            batch_logs = {ident: (log_ids[ident], now) for ident in changed}
            shared: dict = {}
            for effect in transition.effects:
                _batch_effects[effect](model, batch_logs, transition=transition,
                                       reason=reason, shared=shared)
        else:  # each effect on each object, as ``fire`` does
            objects = {obj.id: obj for obj in db.session.scalars(
                select(model).where(model.id.in_(changed)).options(*load)
                .execution_options(populate_existing=True))}
            log_objects = {log.id: log for log in db.session.scalars(
                select(TransitionLog).where(TransitionLog.id.in_(list(log_ids.values()))))}
            for ident in changed:
                for effect in transition.effects:
                    _effects[effect](objects[ident], transition=transition, actor=None,
                                     reason=reason, log=log_objects[log_ids[ident]])
    db.session.flush()
    return changed


def history(obj) -> list[TransitionLog]:
    workflow = workflow_for(obj)
    return list(db.session.scalars(
        select(TransitionLog).where(TransitionLog.object_type == workflow.object_type,
                                    TransitionLog.object_id == obj.id)
        .order_by(TransitionLog.at, TransitionLog.id)))
