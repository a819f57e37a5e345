"""Candidates and candidatures: the prescriber's and the OF's operations.

Views call these functions and own the transaction (commit on success, rollback on
``CandidatureError``). Every state change goes through ``workflow.fire``; the rule sets
``candidature_limits`` and ``cursus_eligibility`` run as its guards.

Concurrency (PostgreSQL): the checks that count rows — a candidate's pending
candidatures, their candidatures on a session, the ``retenue`` candidatures of a session
against its places — are serialised by ``SELECT … FOR UPDATE`` on the candidate row (or
on the session row for an avis ``retenue``) taken *before* counting: a second transaction
waits, then counts what the first one committed.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from backoffice import clock, forms_engine, rules_engine, workflow
from backoffice.extensions import db
from backoffice.facts import candidate_duplicate_facts
from backoffice.models import (Candidate, Candidature,
                               CandidatureState, Formation, FollowUpStep, Membership,
                               OfProfile, PrescriberProfile, Session, User)
from backoffice.permissions import personal_information_scope
from backoffice.services import DomainError
from backoffice.text import name_key


class CandidatureError(DomainError):
    """A refused operation; ``messages`` are French, ``fields`` maps a field to its
    messages (shown beside the field)."""

    def __init__(self, messages: list[str] | str, fields: dict[str, list[str]] | None = None):
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__(" ".join(self.messages))
        self.fields = fields or {}


class CandidatureNotFound(CandidatureError):
    """The candidature is not one the actor may see (a page answers 404)."""


class DuplicateCandidate(CandidatureError):
    """The person is already in the directory: ``match`` is the existing candidate."""

    def __init__(self, messages, match: Candidate | None):
        super().__init__(messages)
        self.match = match


# -- who sees what -------------------------------------------------------------------------
def is_prescriber(membership: Membership | None) -> bool:
    return membership is not None and membership.profile_prescripteur in {
        p.value for p in PrescriberProfile}


def is_of_manager(membership: Membership | None) -> bool:
    return membership is not None and membership.profile_of in (
        OfProfile.PREINSCRIPTION, OfProfile.GENERAL)


def prescriber_scope(membership: Membership):
    """Candidatures a prescriber may see: their own (levels 1 and 2), their structure's
    (level 3)."""
    condition = Candidature.prescriber_structure_id == membership.structure_id
    if membership.profile_prescripteur != PrescriberProfile.N3:
        condition = and_(condition, Candidature.prescriber_user_id == membership.user_id)
    return condition


def of_sessions(structure_id: int):
    """Sessions of an OF: of its formations, or taught by it."""
    return (select(Session.id).join(Formation, Formation.id == Session.formation_id)
            .where(or_(Formation.structure_id == structure_id,
                       Session.organisme_formateur_id == structure_id)))


def of_scope(membership: Membership):
    return and_(Candidature.session_id.in_(of_sessions(membership.structure_id)),
                Candidature.state.notin_((CandidatureState.BROUILLON,
                                          CandidatureState.CORBEILLE,
                                          CandidatureState.EN_ATTENTE_VALIDATION)))


def get_for_prescriber(candidature_id: int, membership: Membership) -> Candidature | None:
    return db.session.scalar(select(Candidature).where(
        Candidature.id == candidature_id, prescriber_scope(membership)))


def get_for_of(candidature_id: int, membership: Membership) -> Candidature | None:
    return db.session.scalar(select(Candidature).where(
        Candidature.id == candidature_id, of_scope(membership)))


# -- lists -------------------------------------------------------------------------------------
def candidature_list(scope, states, *, q: str = "", session_id: int | None = None,
                     page: int = 1, per_page: int = 20):
    """One page of candidatures in ``scope`` and ``states`` (filter on the reference,
    the session reference or the candidate's name), eagerly loaded."""
    conditions = [scope, Candidature.state.in_(states)]
    if session_id:
        conditions.append(Candidature.session_id == session_id)
    q = (q or "").strip()
    if q:
        key = name_key(q)
        matches = [Candidature.reference == q,
                   Candidature.session_id.in_(select(Session.id).where(Session.reference == q))]
        if key:
            matches.append(Candidature.candidate_id.in_(select(Candidate.id).where(
                Candidate.nom_normalise.startswith(key, autoescape=True))))
        conditions.append(or_(*matches))
    total = db.session.scalar(select(func.count(Candidature.id)).where(*conditions)) or 0
    pages = max(1, -(-total // per_page))
    page = max(1, min(page, pages))
    items = list(db.session.scalars(
        select(Candidature).where(*conditions)
        .options(joinedload(Candidature.candidate),
                 joinedload(Candidature.session).joinedload(Session.formation)
                 .joinedload(Formation.organisme_formateur),
                 joinedload(Candidature.session).joinedload(Session.formation)
                 .joinedload(Formation.structure),
                 joinedload(Candidature.session).joinedload(Session.organisme_formateur),
                 joinedload(Candidature.prescriber_user),
                 joinedload(Candidature.prescriber_structure))
        .order_by(Candidature.submitted_at.desc().nulls_last(), Candidature.id.desc())
        .offset((page - 1) * per_page).limit(per_page)).unique())
    return items, total, page, pages


def count_by_state(scope) -> dict[str, int]:
    """The number of candidatures in ``scope`` by state (the counters of the tabs)."""
    return dict(db.session.execute(select(Candidature.state, func.count(Candidature.id))
                                   .where(scope).group_by(Candidature.state)).all())


# -- candidates ------------------------------------------------------------------------------
def search_candidates(*, membership: Membership, nom: str = "", prenom: str = "",
                      date_naissance: dt.date | None = None,
                      identifiant_france_travail: str = "", identifiant_regional: str = "",
                      limit: int = 20) -> list[Candidate]:
    """Directory search on the indexed normalised columns (accents, case, hyphens and
    spaces folded).

    The directory is shared, but only by exact identity: nom + prénom + date de naissance
    all given and equal, or a France Travail identifier (national or regional) equal.
    Among the candidates whose file ``membership`` may see
    (``permissions.personal_information_scope``), every criterion given must hold and a
    name matches from its beginning (the guide's « gt » search)."""
    nom_key, prenom_key = name_key(nom), name_key(prenom)
    france_travail = identifiant_france_travail.strip()
    regional = identifiant_regional.strip()
    partial = []
    if nom_key:
        partial.append(Candidate.nom_normalise.startswith(nom_key, autoescape=True))
    if prenom_key:
        partial.append(Candidate.prenom_normalise.startswith(prenom_key, autoescape=True))
    if date_naissance is not None:
        partial.append(Candidate.date_naissance == date_naissance)
    if france_travail:
        partial.append(Candidate.identifiant_france_travail == france_travail)
    if regional:
        partial.append(Candidate.identifiant_regional == regional)
    if not partial:
        return []
    exact = []
    if nom_key and prenom_key and date_naissance is not None:
        exact.append(and_(Candidate.nom_normalise == nom_key,
                          Candidate.prenom_normalise == prenom_key,
                          Candidate.date_naissance == date_naissance))
    if france_travail:
        exact.append(Candidate.identifiant_france_travail == france_travail)
    if regional:
        exact.append(Candidate.identifiant_regional == regional)
    found = and_(*partial, personal_information_scope(membership))
    if exact:
        found = or_(found, *exact)
    return list(db.session.scalars(
        select(Candidate).where(found, Candidate.anonymised_at.is_(None))
        .order_by(Candidate.nom_normalise, Candidate.prenom_normalise, Candidate.id)
        .limit(limit)))


def check_duplicate(*, nom, prenom, date_naissance, identifiant_france_travail,
                    exclude_id: int | None = None) -> None:
    """Raise ``DuplicateCandidate`` when the ``duplicates`` rule set finds the person in
    the directory."""
    facts = candidate_duplicate_facts(
        nom=nom or "", prenom=prenom or "", date_naissance=date_naissance,
        identifiant_france_travail=identifiant_france_travail, exclude_id=exclude_id)
    violations = [v for v in rules_engine.evaluate("duplicates", facts) if v.blocking]
    if not violations:
        return
    match = None
    for violation in violations:
        indexes = [i for i in violation.fact_indexes if i is not None and i > 0]
        if indexes:
            match = db.session.get(Candidate, facts[indexes[0]].get("candidat_id"))
            break
    raise DuplicateCandidate([v.message for v in violations], match)


def clean_values(form_name: str, values, *, obj=None, context=None,
                 optional: tuple[str, ...] = ()) -> dict:
    """``values`` (a dict of strings or Python values) checked by the rules of
    ``forms/<form_name>.yaml``, as cleaned Python values; for ``obj``, the names not given
    keep its stored values. A refused value raises ``CandidatureError`` with the French
    message of each field (« Label : message »), except a missing answer to the fields
    named in ``optional``."""
    cleaned = forms_engine.clean(form_name, values, context=context, obj=obj)
    errors = {name: messages for name, messages in cleaned.errors.items()
              if not (name in optional and cleaned.values[name] in (None, "", [], False))}
    if errors:
        raise CandidatureError([f"{label} : {message}" for name, label, message
                                in cleaned.messages() if name in errors], errors)
    return cleaned.values


def _check_candidate_duplicate(values: dict, *, exclude_id: int | None = None) -> None:
    check_duplicate(nom=values.get("nom"), prenom=values.get("prenom"),
                    date_naissance=values.get("date_naissance"),
                    identifiant_france_travail=values.get("identifiant_france_travail"),
                    exclude_id=exclude_id)


def create_candidate(values, *, membership: Membership) -> Candidate:
    """A new candidate in the directory from the fields of ``forms/candidate.yaml``;
    ``DuplicateCandidate`` when the person is already there."""
    cleaned = clean_values("candidate", values)
    _check_candidate_duplicate(cleaned)
    candidate = Candidate(created_by_structure_id=membership.structure_id,
                          last_activity_at=clock.now())
    forms_engine.apply_values("candidate", cleaned, candidate)
    db.session.add(candidate)
    db.session.flush()
    return candidate


def update_candidate(candidate: Candidate, values) -> None:
    """Change the fields given in ``values`` (a blank NIR keeps the stored one)."""
    cleaned = clean_values("candidate", values, obj=candidate)
    _check_candidate_duplicate(cleaned, exclude_id=candidate.id)
    forms_engine.apply_values("candidate", cleaned, candidate)
    candidate.last_activity_at = clock.now()
    db.session.flush()


# -- locks -------------------------------------------------------------------------------------
def lock_candidate(candidate_id: int) -> None:
    """Serialise the checks on one candidate's candidatures (no-op on SQLite, which
    serialises writers anyway)."""
    db.session.execute(select(Candidate.id).where(Candidate.id == candidate_id)
                       .with_for_update())


def lock_session(session_id: int) -> None:
    db.session.execute(select(Session.id).where(Session.id == session_id).with_for_update())


# -- candidatures ------------------------------------------------------------------------------
SAME_SESSION_RULES = ("deja_candidat_sur_la_session", "non_retenu_sur_session_hsp")


def _new_reference() -> str:
    while True:
        reference = f"{clock.today():%y}{secrets.randbelow(10**10):010d}"
        if db.session.scalar(select(Candidature.id).where(
                Candidature.reference == reference)) is None:
            return reference


def next_entry_point(session: Session):
    today = clock.today()
    return next((p for p in session.entry_points if p.date_entree >= today), None)


def new_candidature(candidate: Candidate, session: Session, *, actor: User,
                    membership: Membership) -> Candidature:
    """A draft of ``candidate`` on ``session`` (the next entry point for HSP)."""
    if not is_prescriber(membership):
        raise CandidatureError("Seul un prescripteur peut créer une candidature.")
    return Candidature(reference=_new_reference(), candidate=candidate, session=session,
                       entry_point=next_entry_point(session), prescriber_user=actor,
                       prescriber_structure_id=membership.structure_id,
                       state=CandidatureState.BROUILLON,
                       etape_suivi=FollowUpStep.PRISE_EN_CHARGE)


def _fields_of(violations) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for violation in violations:
        fields.setdefault(violation.field, []).append(violation.message)
    return fields


# A draft may be saved without the candidate's consent; submitting it needs it.
DRAFT_MAY_LACK = ("consentement",)


def candidature_context(session: Session) -> dict:
    """What the candidature form's conditions read (the year of the cursus is asked for
    an apprenticeship)."""
    return {"formation_apprentissage": bool(session.formation.modalite_apprentissage)}


def save(candidature: Candidature, values, *, actor: User, membership: Membership,
         submit: bool) -> None:
    """Write ``values`` (the fields of ``forms/candidature.yaml``) into ``candidature``
    and save it as a draft, then submit it when ``submit`` (« Valider »): level 1 →
    waiting for a level 3; levels 2 and 3 → sent to the OF. Refusals raise
    ``CandidatureError`` with the fields' or the rules' messages."""
    cleaned = clean_values("candidature", values, obj=candidature,
                           context=candidature_context(candidature.session),
                           optional=() if submit else DRAFT_MAY_LACK)
    lock_candidate(candidature.candidate_id or candidature.candidate.id)
    forms_engine.apply_values("candidature", cleaned, candidature)
    if candidature.id is None:
        db.session.add(candidature)
    candidature.candidate.last_activity_at = clock.now()
    try:
        db.session.flush()  # an id first: the counts below exclude this candidature
    except IntegrityError:
        raise CandidatureError("La candidature n'a pas pu être enregistrée : "
                               "rechargez la page et recommencez.") from None
    if submit:
        # The transition's guards evaluate candidature_limits (once): its same-session
        # rules, when they fail, are shown alone, as for a draft.
        name = ("soumettre_pour_validation"
                if membership.profile_prescripteur == PrescriberProfile.N1 else "soumettre")
        _fire(candidature, name, actor=actor, shown_alone=SAME_SESSION_RULES)
        return
    # A second live candidature of the candidate on the session is refused even as a draft.
    same_session = [v for v in rules_engine.check("candidature_limits", candidature)
                    if v.blocking and v.rule_id in SAME_SESSION_RULES]
    if same_session:
        raise CandidatureError([v.message for v in same_session], _fields_of(same_session))


def _fire(candidature: Candidature, transition: str, *, actor: User | None,
          reason: str | None = None, shown_alone: tuple[str, ...] = ()) -> None:
    """``workflow.fire``, its refusals as ``CandidatureError``; when blocking violations
    of the rules ``shown_alone`` are among them, only those are shown."""
    try:
        workflow.fire(candidature, transition, actor=actor, reason=reason)
    except workflow.GuardFailed as error:
        blocking = [v for v in error.violations if getattr(v, "blocking", True)]
        blocking = [v for v in blocking
                    if getattr(v, "rule_id", None) in shown_alone] or blocking
        raise CandidatureError([v.message for v in blocking], _fields_of(blocking)) from None
    except workflow.WorkflowError as error:
        raise CandidatureError(error.message) from None


def validate_level1(candidature: Candidature, *, actor: User) -> None:
    """A level-3 prescriber validates a level-1 candidature of their structure."""
    lock_candidate(candidature.candidate_id)
    _fire(candidature, "valider", actor=actor)


def cancel(candidature: Candidature, *, actor: User) -> None:
    """Final cancellation, while no avis is given and until the late-entry date."""
    late_entry = candidature.session.date_entree_tardive
    if late_entry is not None and clock.today() > late_entry:
        raise CandidatureError(
            f"La candidature ne peut plus être annulée : la date d'entrée tardive de la "
            f"session ({late_entry:%d/%m/%Y}) est passée.")
    _fire(candidature, "annuler", actor=actor)


def discard(candidature: Candidature, *, actor: User) -> None:
    _fire(candidature, "jeter", actor=actor)


# -- OF side ---------------------------------------------------------------------------------
AVIS_TRANSITIONS = {
    CandidatureState.RETENUE: "retenir",
    CandidatureState.NON_RETENUE: "ne_pas_retenir",
    CandidatureState.REFUS_SESSION_COMPLETE: "refuser_session_complete",
    CandidatureState.REFUS_SESSION_ANNULEE: "refuser_session_annulee",
}


def give_avis(candidature: Candidature, avis: str, *, actor: User,
              motif: str | None = None) -> None:
    """The OF's recruitment decision. A ``retenue`` is refused when the session (or its
    entry point) has no place left: never more ``retenue`` than places."""
    transition = AVIS_TRANSITIONS.get(avis)
    if transition is None:
        raise CandidatureError("Choisissez un avis.")
    if avis == CandidatureState.RETENUE:
        lock_session(candidature.session_id)
        _check_places(candidature)
    candidature.avis_motif = (motif or "").strip() or None
    candidature.avis_by = actor
    if avis == CandidatureState.RETENUE:
        candidature.etape_suivi = FollowUpStep.INSCRIPTION
    _fire(candidature, transition, actor=actor, reason=motif)


@dataclasses.dataclass
class BulkAvis:
    """What ``give_avis_to_many`` did: how many avis were recorded, and one French line
    per refused candidature (« reference : why »)."""

    done: int
    refused: list[str]


def give_avis_to_many(candidature_ids, avis: str, *, actor: User, membership: Membership,
                      motif: str | None = None) -> BulkAvis:
    """The same avis on several candidatures of the OF: each in a savepoint, so that one
    refusal (no place left, already decided) does not cancel the others; the caller
    commits once. ``CandidatureNotFound`` when an id is not a candidature the OF sees
    (nothing is changed then)."""
    ids = [ident for ident in candidature_ids if ident > 0]
    if not ids:
        raise CandidatureError("Cochez au moins une candidature.")
    candidatures = [get_for_of(ident, membership) for ident in ids]
    if any(candidature is None for candidature in candidatures):
        raise CandidatureNotFound("Candidature introuvable.")
    outcome = BulkAvis(done=0, refused=[])
    for candidature in candidatures:
        savepoint = db.session.begin_nested()
        try:
            give_avis(candidature, avis, actor=actor, motif=motif)
            savepoint.commit()
            outcome.done += 1
        except CandidatureError as error:
            savepoint.rollback()
            outcome.refused.append(f"{candidature.reference} : {' '.join(error.messages)}")
    return outcome


def _check_places(candidature: Candidature) -> None:
    session = candidature.session
    point = candidature.entry_point
    places = point.places if point is not None else session.places
    if places is None:
        return
    query = select(func.count(Candidature.id)).where(
        Candidature.state == CandidatureState.RETENUE, Candidature.id != candidature.id)
    query = (query.where(Candidature.entry_point_id == point.id) if point is not None
             else query.where(Candidature.session_id == session.id))
    retained = db.session.scalar(query) or 0
    if retained >= places:
        where = (f"le point d'entrée du {point.date_entree:%d/%m/%Y}" if point is not None
                 else f"la session {session.reference}")
        raise CandidatureError(f"Plus de place sur {where} : {retained} candidat(s) "
                               f"retenu(s) pour {places} place(s).")


def set_follow_up(candidature: Candidature, step: str) -> None:
    if step not in {s.value for s in FollowUpStep}:
        raise CandidatureError("Choisissez une étape du suivi.")
    candidature.etape_suivi = step
    db.session.flush()

