"""Catalogue operations of an organisme de formation and of the moderators.

Views, admin actions and the CSV import stay thin and call these functions. Each takes
keyword arguments (``actor=``), changes states only through ``workflow.fire`` and raises
``CatalogueError`` (a French message, optionally the field concerned) on bad input. The
caller owns the transaction: it commits once per user action, or rolls back.

The validated version of a formation. When an OF edits a formation that is ``validee``
(its fields or its sessions), the version moderators validated is first copied into
``Formation.validated_snapshot`` (fields and sessions, see ``snapshot``): search shows the
snapshot while it is set. « Publier » then fires ``modifier`` (→ ``modifiee``); a moderator
who validates clears the snapshot (the live row becomes the validated version); one who
asks for a complement keeps it, so the validated version stays visible while the OF
corrects its changes.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import logging
import math

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import joinedload

from backoffice import clock, forms_engine, rules_engine, workflow
from backoffice.extensions import db
from backoffice.input_guard import CONTROL_CHARACTERS
from backoffice.models import (Candidature, Certification, Commune, EntryPoint, Formation,
                               FormationState, JobRun, JobRunStatus, Membership, OfProfile,
                               Session, SessionState, Structure, User)
from backoffice.services import DomainError

logger = logging.getLogger(__name__)

CATALOGUE_PROFILES = (OfProfile.CATALOGUE, OfProfile.GENERAL)
EDITABLE_STATES = (FormationState.BROUILLON, FormationState.COMPLEMENT_DEMANDE,
                   FormationState.VALIDEE, FormationState.MODIFIEE)
DATES_LOCKED_MESSAGE = (
    "Les dates d'une session qui a commencé ou qui a reçu des candidatures ne peuvent pas "
    "être modifiées : ne réutilisez pas une ancienne session en changeant ses dates, "
    "créez une nouvelle session (à chaque période de formation correspond une référence "
    "de session unique).")

SNAPSHOT_FIELDS = ("intitule", "objectif", "programme", "certification_id", "lien_web",
                   "financement", "dispositif", "numero_marche", "eligible_cpf",
                   "modalite_formation_continue", "modalite_contrat_pro",
                   "modalite_apprentissage", "annees_cursus", "organisme_formateur_id")
SESSION_SNAPSHOT_FIELDS = ("reference", "date_debut", "date_fin", "adresse", "commune_id",
                           "cedex", "organisme_formateur_id", "mode_entree", "places",
                           "date_limite_inscription", "date_entree_tardive",
                           "ouverte_candidature", "state")


class CatalogueError(DomainError):
    """A refused catalogue operation."""


class ProbableDuplicate(CatalogueError):
    """A new session makes its formation look like one already in the catalogue:
    ``warnings`` are the violations to show; creating it needs a confirmation."""

    def __init__(self, warnings: list):
        super().__init__("Doublon probable : confirmez la création (« Créer quand même »).")
        self.warnings = warnings


# -- access ------------------------------------------------------------------------------
def can_manage_catalogue(membership: Membership | None) -> bool:
    return membership is not None and membership.profile_of in CATALOGUE_PROFILES


# -- references --------------------------------------------------------------------------
def next_formation_reference(*, at: dt.datetime | None = None) -> str:
    """12 digits: the year then a counter (``202600000001``), one above the highest
    reference of the year. Formations are never deleted (``supprimee`` is a state), so a
    reference is never given twice; the unique constraint guards concurrent creations."""
    year = clock.to_local(at or clock.now()).year
    prefix = f"{year:04d}"
    highest = db.session.scalar(select(func.max(Formation.reference))
                                .where(Formation.reference.like(f"{prefix}%")))
    number = int(highest[4:]) + 1 if highest else 1
    return f"{prefix}{number:08d}"


def next_session_reference() -> str:
    """8 digits, one above the highest session reference (never reused: sessions are
    never deleted, ``supprimee`` is a state)."""
    highest = db.session.scalar(select(func.max(Session.reference)))
    return f"{(int(highest) if highest else 0) + 1:08d}"


# -- validated version -------------------------------------------------------------------
def _json(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def snapshot(formation: Formation) -> dict:
    """The formation and its sessions as plain JSON (what search shows while modified)."""
    data = {name: _json(getattr(formation, name)) for name in SNAPSHOT_FIELDS}
    data["sessions"] = [{name: _json(getattr(s, name)) for name in SESSION_SNAPSHOT_FIELDS}
                        for s in formation.sessions]
    return data


def mark_edited(formation: Formation) -> None:
    """Call before changing a formation or one of its sessions: a validated formation
    keeps the version moderators validated until its change is validated."""
    if formation.state not in EDITABLE_STATES:
        raise CatalogueError(
            f"Cette formation est à l'état « {FormationState(formation.state).label} » : "
            "elle ne peut pas être modifiée.")
    if formation.state == FormationState.VALIDEE and formation.validated_snapshot is None:
        formation.validated_snapshot = snapshot(formation)


def has_pending_changes(formation: Formation) -> bool:
    return formation.validated_snapshot is not None


# -- « Mon catalogue » ---------------------------------------------------------------------
CATALOGUE_TABS = ("publiees", "creees", "modifiees", "brouillons", "archivees", "supprimees")


@dataclasses.dataclass
class CataloguePage:
    """One page of a tab of « Mon catalogue »: (formation, number of active sessions,
    first start, last end) rows, and the counter of every tab."""

    rows: list
    total: int
    page: int
    pages: int
    counts: dict[str, int]


def _tab_condition(tab: str, today):
    """The formations of a tab of « Mon catalogue » (``None``: all of them)."""
    if tab == "publiees":
        return Formation.state == FormationState.VALIDEE
    if tab == "creees":
        return Formation.state == FormationState.EN_ATTENTE_MODERATION
    if tab == "modifiees":
        return or_(Formation.state == FormationState.MODIFIEE,
                   and_(Formation.state == FormationState.VALIDEE,
                        Formation.validated_snapshot.is_not(None)))
    if tab == "brouillons":
        return Formation.state.in_((FormationState.BROUILLON, FormationState.COMPLEMENT_DEMANDE))
    if tab == "archivees":
        return Formation.state == FormationState.ARCHIVEE
    if tab == "supprimees":
        return Formation.state == FormationState.SUPPRIMEE
    return None


def _alert_condition(stats, today):
    """Formations needing action: complement demanded, every session ended, certification
    no longer active."""
    live = Formation.state.in_((FormationState.VALIDEE, FormationState.MODIFIEE,
                                FormationState.EN_ATTENTE_MODERATION))
    return or_(Formation.state == FormationState.COMPLEMENT_DEMANDE,
               and_(live, stats.c.nb_sessions > 0, stats.c.last_end < today),
               and_(Formation.state != FormationState.SUPPRIMEE,
                    Certification.active.is_(False)))


def catalogue_page(structure: Structure, tab: str, *, q: str = "", page: int = 1,
                   per_page: int = 20, today: dt.date | None = None) -> CataloguePage:
    """The formations of ``structure`` in ``tab`` (one of ``CATALOGUE_TABS``, or
    ``alerte``: those needing action), filtered on the title, the reference or the
    funding, most recently changed first; with the counter of every tab."""
    today = today or clock.today()
    stats = (select(Session.formation_id.label("formation_id"),
                    func.count(Session.id).label("nb_sessions"),
                    func.min(Session.date_debut).label("first_start"),
                    func.max(Session.date_fin).label("last_end"))
             .where(Session.state == SessionState.ACTIVE)
             .group_by(Session.formation_id).subquery())
    base = (select(Formation, stats.c.nb_sessions, stats.c.first_start, stats.c.last_end)
            .outerjoin(stats, stats.c.formation_id == Formation.id)
            .outerjoin(Certification, Certification.id == Formation.certification_id)
            .where(Formation.structure_id == structure.id))
    condition = (_alert_condition(stats, today) if tab == "alerte"
                 else _tab_condition(tab, today))
    base = base.where(condition)
    if q:
        like = f"%{q.lower()}%"
        base = base.where(or_(func.lower(Formation.intitule).like(like),
                              Formation.reference.like(like),
                              func.lower(func.coalesce(Formation.financement, "")).like(like)))
    total = db.session.scalar(select(func.count()).select_from(base.subquery()))
    pages = max(math.ceil(total / per_page), 1)
    page = min(max(page, 1), pages)
    rows = db.session.execute(base.options(joinedload(Formation.certification))
                              .order_by(Formation.updated_at.desc(), Formation.id.desc())
                              .limit(per_page).offset((page - 1) * per_page)).all()
    return CataloguePage(rows=rows, total=total, page=page, pages=pages,
                         counts=_tab_counts(structure, stats, today))


def _tab_counts(structure: Structure, stats, today) -> dict[str, int]:
    """One aggregate query for the counters of every tab."""
    def total(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    columns = [total(_tab_condition(tab, today)) for tab in CATALOGUE_TABS]
    columns.append(total(_alert_condition(stats, today)))
    row = db.session.execute(
        select(*columns).select_from(Formation)
        .outerjoin(stats, stats.c.formation_id == Formation.id)
        .outerjoin(Certification, Certification.id == Formation.certification_id)
        .where(Formation.structure_id == structure.id)).one()
    counts = {tab: int(value or 0) for tab, value in zip(CATALOGUE_TABS, row)}
    counts["alerte"] = int(row[-1] or 0)
    return counts


# -- formations --------------------------------------------------------------------------
def clean_values(form_name: str, values, *, structure: Structure, obj=None) -> dict:
    """``values`` (a dict of strings or Python values) checked by the rules of
    ``forms/<form_name>.yaml``, as cleaned Python values; for ``obj``, the names not given
    keep its stored values. Raises ``CatalogueError`` (« Label : message ; … », and the
    messages by field) when a value is refused."""
    cleaned = forms_engine.clean(form_name, values, context={"structure": structure}, obj=obj)
    if not cleaned.ok:
        raise CatalogueError(cleaned.summary(), fields=cleaned.errors)
    return cleaned.values


def create_formation(values, *, actor: User, structure: Structure) -> Formation:
    """A new draft formation of ``structure`` from the fields of ``forms/formation.yaml``."""
    cleaned = clean_values("formation", values, structure=structure)
    formation = Formation(reference=next_formation_reference(), structure=structure,
                          created_by=actor, state=FormationState.BROUILLON,
                          annees_cursus=[], extra={})
    forms_engine.apply_values("formation", cleaned, formation)
    if formation.organisme_formateur_id is None and formation.organisme_formateur is None:
        formation.organisme_formateur = structure
    db.session.add(formation)
    db.session.flush()
    return formation


def update_formation(formation: Formation, values, *, actor: User) -> Formation:
    """Change the fields given in ``values`` (the others keep their value)."""
    cleaned = clean_values("formation", values, structure=formation.structure, obj=formation)
    mark_edited(formation)
    forms_engine.apply_values("formation", cleaned, formation)
    db.session.flush()
    return formation


# -- sessions ----------------------------------------------------------------------------
def session_has_candidatures(session: Session) -> bool:
    if session.id is None:
        return False
    return bool(db.session.scalar(select(exists().where(Candidature.session_id == session.id))))


def session_dates_locked(session: Session, *, today: dt.date | None = None) -> bool:
    """A session that started or has candidatures keeps its dates. A copy made today
    (« Dupliquer ») is not locked yet, so that its dates can be set."""
    if session.id is None:
        return False
    today = today or clock.today()
    created = clock.to_local(session.created_at).date() if session.created_at else today
    started = session.date_debut <= today and created < today
    return started or session_has_candidatures(session)


def _check_session_values(session: Session, values: dict) -> None:
    if values.get("date_debut") and values.get("date_fin") \
            and values["date_fin"] < values["date_debut"]:
        raise CatalogueError("La date de fin doit être postérieure ou égale à la date de "
                             "début.", "date_fin")
    if session_dates_locked(session):
        for name in ("date_debut", "date_fin"):
            if name in values and values[name] != getattr(session, name):
                raise CatalogueError(DATES_LOCKED_MESSAGE, name)


def create_session(formation: Formation, values, *, actor: User,
                   refuse_duplicates: bool = False) -> Session:
    """A new session of ``formation`` from the fields of ``forms/session.yaml``. With
    ``refuse_duplicates`` (a page before « Créer quand même »), ``ProbableDuplicate``
    when the formation then looks like another one of the catalogue."""
    cleaned = clean_values("session", values, structure=formation.structure)
    mark_edited(formation)
    session = Session(reference=next_session_reference(), state=SessionState.ACTIVE)
    forms_engine.apply_values("session", cleaned, session)
    session.formation = formation
    db.session.add(session)
    db.session.flush()
    if refuse_duplicates:
        warnings = duplicate_warnings(formation)
        if warnings:
            raise ProbableDuplicate(warnings)
    return session


def update_session(session: Session, values, *, actor: User) -> Session:
    """Change the fields given in ``values``; the dates of a session that started or has
    candidatures stay as they are."""
    cleaned = clean_values("session", values, structure=session.formation.structure,
                           obj=session)
    _check_session_values(session, cleaned)
    mark_edited(session.formation)
    forms_engine.apply_values("session", cleaned, session)
    db.session.flush()
    return session


def duplicate_session(session: Session, *, actor: User) -> Session:
    """A copy with a new reference (no candidatures, no entry points), to edit next."""
    mark_edited(session.formation)
    copy = Session(reference=next_session_reference(), formation=session.formation,
                   state=SessionState.ACTIVE,
                   **{name: getattr(session, name) for name in (
                       "date_debut", "date_fin", "adresse", "commune_id", "cedex",
                       "organisme_formateur_id", "mode_entree", "places",
                       "date_limite_inscription", "date_entree_tardive",
                       "ouverte_candidature")})
    db.session.add(copy)
    db.session.flush()
    return copy


def duplicate_warnings(formation: Formation) -> list:
    """Probable duplicates (rule set ``duplicates``), as warnings to show."""
    return [v for v in rules_engine.check("duplicates", formation)
            if v.rule_id == "formation_doublon_probable"]


# -- publication -------------------------------------------------------------------------
PUBLISHABLE_STATES = (FormationState.BROUILLON, FormationState.COMPLEMENT_DEMANDE,
                      FormationState.VALIDEE)


def check_publishable(formation: Formation) -> None:
    """« Publier » starts from a draft, a complement asked or a validated formation."""
    if formation.state not in PUBLISHABLE_STATES:
        raise CatalogueError(
            f"Cette formation est à l'état « {FormationState(formation.state).label} » : "
            "elle ne peut pas être publiée.")


def publication_transition(formation: Formation) -> str:
    return "modifier" if formation.state == FormationState.VALIDEE else "publier"


def publication_check(formation: Formation, *, at: dt.datetime | None = None) -> list:
    """Every violation of the ``publication`` rule set (blocking ones first)."""
    violations = rules_engine.check("publication", formation, at=at or clock.now())
    return sorted(violations, key=lambda v: not v.blocking)


def confirm_publication(formation: Formation, *, actor: User):
    """« Confirmer la publication »: ``publier`` (→ en attente de modération) or, for a
    validated formation, ``modifier`` (→ modifiée). Raises ``workflow.WorkflowError``."""
    log = workflow.fire(formation, publication_transition(formation), actor=actor)
    formation.moderation_comment = None
    return log


# -- moderation --------------------------------------------------------------------------
def validate(formation: Formation, *, actor: User):
    log = workflow.fire(formation, "valider", actor=actor)
    formation.validated_snapshot = None
    formation.moderation_comment = None
    return log


def request_complement(formation: Formation, *, actor: User, comment: str):
    comment = (comment or "").strip()
    if not comment:
        raise CatalogueError("Le commentaire est obligatoire pour demander un complément.",
                             "commentaire")
    log = workflow.fire(formation, "demander_complement", actor=actor, reason=comment)
    formation.moderation_comment = comment
    return log


@dataclasses.dataclass
class Moderated:
    """What ``moderate`` did: the references decided, and « reference : why » for each
    formation refused."""

    done: list[str]
    refused: list[str]


def moderate(formation_ids, decision: str, *, actor: User, comment: str = "") -> Moderated:
    """« Valider » or « Demander un complément » (``decision``) on several formations of
    the moderation queue, each in a savepoint so that one refusal (a state that changed
    meanwhile) leaves the others decided; the caller commits once."""
    if decision not in ("valider", "demander_complement"):
        raise CatalogueError("Choisissez « Valider » ou « Demander un complément ».")
    if decision == "demander_complement" and not (comment or "").strip():
        raise CatalogueError("Le commentaire est obligatoire pour demander un complément : "
                             "écrivez-le dans la zone « Commentaire » avant de choisir "
                             "l'action.", "commentaire")
    outcome = Moderated(done=[], refused=[])
    for ident in formation_ids:
        formation = db.session.get(Formation, int(ident))
        if formation is None:
            continue
        savepoint = db.session.begin_nested()
        try:
            if decision == "valider":
                validate(formation, actor=actor)
            else:
                request_complement(formation, actor=actor, comment=comment)
            savepoint.commit()
            outcome.done.append(formation.reference)
        except (workflow.WorkflowError, CatalogueError) as error:
            savepoint.rollback()
            outcome.refused.append(f"{formation.reference} : {error.message}")
    return outcome


def diff(formation: Formation) -> list[tuple[str, object, object]]:
    """(field, validated value, current value) for each field that changed, sessions
    included (one line per session added, removed or changed)."""
    before = formation.validated_snapshot or {}
    after = snapshot(formation)
    lines = []
    for name in SNAPSHOT_FIELDS:
        if before.get(name) != after.get(name):
            lines.append((name, before.get(name), after.get(name)))
    old = {s["reference"]: s for s in before.get("sessions", [])}
    new = {s["reference"]: s for s in after["sessions"]}
    for reference in sorted(old.keys() | new.keys()):
        a, b = old.get(reference), new.get(reference)
        if a == b:
            continue
        lines.append((f"session {reference}", _session_text(a), _session_text(b)))
    return lines


def _session_text(data: dict | None) -> str:
    if data is None:
        return "—"
    parts = [f"du {_fr_date(data['date_debut'])} au {_fr_date(data['date_fin'])}"]
    for name in ("adresse", "cedex", "places", "mode_entree", "state"):
        if data.get(name) not in (None, ""):
            parts.append(f"{name} : {data[name]}")
    return ", ".join(parts)


def _fr_date(value: str | None) -> str:
    return dt.date.fromisoformat(value).strftime("%d/%m/%Y") if value else "?"


# -- CSV import --------------------------------------------------------------------------
IMPORT_COLUMNS = (
    ("reference_formation", "Référence de la formation (12 chiffres) à mettre à jour ; vide "
                            "pour créer. Les lignes sans référence ayant le même intitulé et "
                            "le même code Certif Info créent une seule formation."),
    ("intitule", "Intitulé (obligatoire, 300 caractères au plus)"),
    ("objectif", "Objectif"),
    ("programme", "Programme et contenu"),
    ("code_certifinfo", "Code Certif Info de la certification préparée"),
    ("lien_web", "Lien web (http:// ou https://)"),
    ("financement", "Financement"),
    ("dispositif", "HSP, conventionne_region, non_conventionne ou apprentissage"),
    ("numero_marche", "Numéro du marché"),
    ("eligible_cpf", "oui ou non"),
    ("modalite_formation_continue", "oui ou non (obligatoire)"),
    ("modalite_contrat_pro", "oui ou non (obligatoire)"),
    ("modalite_apprentissage", "oui ou non (obligatoire)"),
    ("annees_cursus", "Années ouvertes à l'apprentissage séparées par | (ex. 1|2)"),
    ("siret_organisme_formateur", "SIRET de l'organisme formateur (même SIREN) ; vide : "
                                  "votre structure"),
    ("reference_session", "Référence de la session (8 chiffres) à mettre à jour ; vide "
                          "pour créer une session si des dates sont données"),
    ("date_debut", "Début de la session (jj/mm/aaaa)"),
    ("date_fin", "Fin de la session (jj/mm/aaaa)"),
    ("mode_entree", "date_fixe, entrees_sorties_sequencees ou permanente (défaut date_fixe)"),
    ("adresse", "Adresse du lieu de formation"),
    ("code_postal", "Code postal du lieu de formation"),
    ("commune", "Commune du lieu de formation"),
    ("cedex", "Cedex"),
    ("places", "Nombre de places"),
    ("date_limite_inscription", "Date limite d'inscription (jj/mm/aaaa)"),
    ("date_entree_tardive", "Date d'entrée tardive (jj/mm/aaaa)"),
)
IMPORT_MAX_BYTES = 5 * 1024 * 1024
FORMATION_COLUMNS = ("intitule", "objectif", "programme", "lien_web", "financement",
                     "dispositif", "numero_marche", "eligible_cpf",
                     "modalite_formation_continue", "modalite_contrat_pro",
                     "modalite_apprentissage")
SESSION_COLUMNS = ("date_debut", "date_fin", "mode_entree", "adresse", "cedex", "places",
                   "date_limite_inscription", "date_entree_tardive")


@dataclasses.dataclass
class ImportLine:
    number: int
    outcome: str  # "créée", "mise à jour", "erreur"
    message: str
    reference: str = ""


@dataclasses.dataclass
class ImportReport:
    lines: list[ImportLine]
    encoding: str
    delimiter: str
    all_or_nothing: bool = False
    cancelled: bool = False

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ImportReport":
        return cls(**{**data, "lines": [ImportLine(**line) for line in data["lines"]]})

    @property
    def errors(self) -> int:
        return sum(1 for line in self.lines if line.outcome == "erreur")

    @property
    def imported(self) -> int:
        return 0 if self.cancelled else len(self.lines) - self.errors


def decode_csv(raw: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM), else Windows-1252."""
    try:
        return raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "Windows-1252"


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    return ";" if first.count(";") >= first.count(",") else ","


def _yes_no(value: str) -> str:
    folded = value.strip().lower()
    return {"o": "oui", "1": "oui", "true": "oui", "vrai": "oui", "n": "non", "0": "non",
            "false": "non", "faux": "non"}.get(folded, folded)


def read_csv(raw: bytes) -> tuple[list[tuple[int, dict]], str, str]:
    """The non-empty lines of a catalogue file as (line number, {column: value}), with its
    encoding and delimiter; raises ``CatalogueError`` for a file that cannot be imported."""
    if len(raw) > IMPORT_MAX_BYTES:
        raise CatalogueError("Le fichier dépasse 5 Mo : découpez-le en plusieurs fichiers.",
                             "fichier")
    text, encoding = decode_csv(raw)
    control = CONTROL_CHARACTERS.search(text)
    if control is not None:
        line = text.count("\n", 0, control.start()) + 1
        raise CatalogueError(f"Ligne {line} : le fichier contient un caractère de contrôle "
                             "invisible : retirez-le et recommencez.", "fichier")
    delimiter = _delimiter(text)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers = [h.strip().lower() for h in (reader.fieldnames or [])]
    known = {name for name, _ in IMPORT_COLUMNS}
    if "intitule" not in headers and "reference_formation" not in headers:
        raise CatalogueError("La première ligne doit donner le nom des colonnes (au moins "
                             "« intitule » ou « reference_formation »).", "fichier")
    unknown = [h for h in headers if h and h not in known]
    if unknown:
        raise CatalogueError(f"Colonne(s) inconnue(s) : {', '.join(unknown)}.", "fichier")
    rows = []
    for number, row in enumerate(reader, start=2):
        values = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()
                  if k is not None}
        if any(values.values()):
            rows.append((number, values))
    if not rows:
        raise CatalogueError("Le fichier ne contient aucune ligne à importer.", "fichier")
    return rows, encoding, delimiter


def import_csv(raw: bytes, *, actor: User, structure: Structure,
               all_or_nothing: bool = False, progress=None,
               done: list[ImportLine] | None = None) -> ImportReport:
    """Create or update formations and sessions from a CSV file, one savepoint per line:
    a bad line changes nothing and the others are imported (or nothing at all with
    ``all_or_nothing``). The caller commits (or rolls back when ``report.cancelled``).
    ``progress(report, total)``, if given, is called after each line. ``done``: the report
    lines of the first lines, already imported and committed by an interrupted run; they
    are not imported again, and the formations they created still group the next lines."""
    rows, encoding, delimiter = read_csv(raw)
    report = ImportReport(lines=[], encoding=encoding, delimiter=delimiter,
                          all_or_nothing=all_or_nothing)
    created_here: dict[tuple[str, str], int] = {}
    done = done or []
    for (number, values), line in zip(rows, done):
        report.lines.append(line)
        if line.outcome == "créée" and not values.get("reference_formation"):
            created_here[_import_key(values)] = db.session.scalar(select(Formation.id).where(
                Formation.reference == line.reference,
                Formation.structure_id == structure.id))
    for number, values in rows[len(done):]:
        savepoint = db.session.begin_nested()
        try:
            line = _import_line(number, values, actor=actor, structure=structure,
                                created_here=created_here)
            savepoint.commit()
        except CatalogueError as error:
            savepoint.rollback()
            line = ImportLine(number, "erreur", error.message, values.get(
                "reference_formation", ""))
        except workflow.WorkflowError as error:
            savepoint.rollback()
            line = ImportLine(number, "erreur", error.message)
        report.lines.append(line)
        if progress is not None:
            progress(report, len(rows))
    report.cancelled = all_or_nothing and report.errors > 0
    return report


def _import_key(values: dict) -> tuple[str, str]:
    """Lines without a formation reference that share this key go to one formation."""
    return values.get("intitule", ""), values.get("code_certifinfo", "")


def _years(text: str) -> list[str]:
    return [y for y in (part.strip() for part in text.replace(",", "|").split("|")) if y]


def _formation_values(values: dict) -> dict:
    """The formation fields a CSV line gives (empty columns are not given): plain values
    for ``forms/formation.yaml``, the Certif Info code and the formateur's SIRET as ids."""
    data: dict = {}
    for name in FORMATION_COLUMNS:
        value = values.get(name, "")
        if not value:
            continue
        if name == "eligible_cpf":
            data[name] = _yes_no(value) == "oui"
        elif name.startswith("modalite_"):
            data[name] = _yes_no(value)
        else:
            data[name] = value
    if values.get("annees_cursus"):
        data["annees_cursus"] = _years(values["annees_cursus"])
    code = values.get("code_certifinfo")
    if code:
        certification_id = db.session.scalar(select(Certification.id).where(
            Certification.code_certifinfo == code))
        if certification_id is None:
            raise CatalogueError(f"Code Certif Info inconnu : {code}.")
        data["certification_id"] = certification_id
    siret = values.get("siret_organisme_formateur", "").replace(" ", "")
    if siret:
        formateur_id = db.session.scalar(select(Structure.id).where(Structure.siret == siret))
        if formateur_id is None:
            raise CatalogueError(f"Organisme formateur introuvable (SIRET {siret}).")
        data["organisme_formateur_id"] = formateur_id
    return data


def _session_values(values: dict, session: Session | None) -> dict:
    """The session fields a CSV line gives; a new session is « date fixe » and open to
    candidatures unless the line says otherwise."""
    data: dict = {name: values[name] for name in SESSION_COLUMNS if values.get(name)}
    if session is None:
        data.setdefault("mode_entree", "date_fixe")
        data["ouverte_candidature"] = True
    commune_id = _find_commune(values.get("code_postal", ""), values.get("commune", ""))
    if commune_id is not None:
        data["commune_id"] = commune_id
    return data


def _import_line(number: int, values: dict, *, actor: User, structure: Structure,
                 created_here: dict) -> ImportLine:
    """One line of the file: create or update its formation (and session), with the
    rules of the formation and session forms (``CatalogueError`` « Label : message »)."""
    reference = values.get("reference_formation", "")
    key = _import_key(values)
    formation = None
    if reference:
        formation = db.session.scalar(select(Formation).where(
            Formation.reference == reference, Formation.structure_id == structure.id))
        if formation is None:
            raise CatalogueError(f"La formation {reference} n'existe pas dans votre catalogue.")
    elif key in created_here:
        formation = db.session.get(Formation, created_here[key])

    new_formation = formation is None
    formation_values = _formation_values(values)
    if new_formation:
        formation = create_formation(formation_values, actor=actor, structure=structure)
        if not reference:
            created_here[key] = formation.id
    elif any(values.get(c) for c in FORMATION_COLUMNS):
        update_formation(formation, formation_values, actor=actor)
    else:
        mark_edited(formation)

    session_outcome = ""
    session_reference = values.get("reference_session", "")
    if session_reference or values.get("date_debut") or values.get("date_fin"):
        session = None
        if session_reference:
            session = db.session.scalar(select(Session).where(
                Session.reference == session_reference, Session.formation_id == formation.id))
            if session is None:
                raise CatalogueError(f"La session {session_reference} n'appartient pas à la "
                                     f"formation {formation.reference}.")
        session_values = _session_values(values, session)
        if session is None:
            session = create_session(formation, session_values, actor=actor)
            session_outcome = f", session {session.reference} créée"
        else:
            update_session(session, session_values, actor=actor)
            session_outcome = f", session {session.reference} mise à jour"
    outcome = "créée" if new_formation else "mise à jour"
    return ImportLine(number, outcome, f"Formation {formation.reference} {outcome}"
                      f"{session_outcome}.", formation.reference)


def _find_commune(code_postal: str, nom: str) -> int | None:
    if not code_postal and not nom:
        return None
    query = select(Commune.id)
    if code_postal:
        query = query.where(Commune.code_postal == code_postal)
    if nom:
        query = query.where(func.lower(Commune.nom) == nom.lower())
    ids = list(db.session.scalars(query.limit(2)))
    if len(ids) != 1:
        where = " ".join(filter(None, (code_postal, nom)))
        raise CatalogueError(f"Commune introuvable ou ambiguë : {where}.")
    return ids[0]


# -- CSV import of a large file, by a runner of the task queue ---------------------------
# A file with more lines than IMPORT_BACKGROUND_THRESHOLD is a queued task (``tasks.py``):
# a JobRun row (job IMPORT_JOB, the raw file in its payload until it ends) whose
# ``summary`` is JSON: {"structure_id", "user_id", "fichier", "tout_ou_rien", "traites",
# "total", "maj" (ISO time of the last update), "lignes" (the report lines committed so
# far), "reprise" (lines committed before an interruption), "rapport"
# (ImportReport.as_dict() once done), "erreur"}; a runner
# executes it while the page polls it. Without « tout ou rien », the lines are committed
# with the progress every IMPORT_PROGRESS_EVERY lines (each line is still all or
# nothing) with their report lines: if the runner dies, the next one resumes after the
# committed lines, so no line is imported twice and the report stays whole. With it, everything stays in one transaction (committed or
# rolled back at the end): progress is only known at the end, and an interrupted import
# starts again from the first line.
IMPORT_JOB = "import_catalogue"
IMPORT_BACKGROUND_THRESHOLD = 200
IMPORT_PROGRESS_EVERY = 25
IMPORT_FAILED_MESSAGE = ("L'import s'est interrompu de façon inattendue : les lignes déjà "
                         "importées le restent ; vérifiez votre catalogue puis importez de "
                         "nouveau les lignes manquantes.")


def import_state(run: JobRun) -> dict:
    try:
        return json.loads(run.summary or "{}")
    except ValueError:
        return {}


def start_import(raw: bytes, *, actor: User, structure: Structure, filename: str,
                 total: int, all_or_nothing: bool) -> int:
    """Queue the import of a file of ``total`` lines (committed) and return its id at
    once; a runner executes it. The caller has read the file first (``read_csv``)."""
    from backoffice import tasks

    state = {"structure_id": structure.id, "user_id": actor.id, "fichier": filename[:200],
             "tout_ou_rien": all_or_nothing, "traites": 0, "total": total,
             "maj": clock.now().isoformat(), "reprise": 0, "rapport": None, "erreur": None}
    return tasks.enqueue(IMPORT_JOB, summary=json.dumps(state), payload=raw,
                         requested_by=actor)


def run_import(job_id: int, raw: bytes) -> None:
    """The task (run by a runner): an unexpected error ends it with a French message."""
    try:
        _import_job(job_id, raw)
    except Exception:  # noqa: BLE001 - the job must end, whatever happened
        logger.exception("Import du catalogue %s interrompu", job_id)
        db.session.rollback()
        run = db.session.get(JobRun, job_id)
        state = import_state(run)
        state.update(erreur=IMPORT_FAILED_MESSAGE, maj=clock.now().isoformat())
        run.summary = json.dumps(state)
        run.status = JobRunStatus.ECHEC
        run.ended_at = clock.now()
        db.session.commit()


def _import_job(job_id: int, raw: bytes) -> None:
    from backoffice import tasks

    run = db.session.get(JobRun, job_id)
    state = import_state(run)
    actor = db.session.get(User, state["user_id"])
    structure = db.session.get(Structure, state["structure_id"])
    all_or_nothing = bool(state.get("tout_ou_rien"))
    # The lines an interrupted run committed, with their report (saved with the progress):
    # not imported again.
    done = [] if all_or_nothing else [ImportLine(**line) for line in state.get("lignes") or []]
    db.session.commit()

    def save(report: ImportReport | None = None, **changes) -> JobRun:
        if report is not None:
            changes.update(traites=len(report.lines), lignes=[
                dataclasses.asdict(line) for line in report.lines])
        state.update(changes, maj=clock.now().isoformat())
        row = db.session.get(JobRun, job_id)
        row.summary = json.dumps(state)
        row.rows_seen = state["traites"]
        return row

    def progress(report: ImportReport, total: int) -> None:
        done_now = len(report.lines)
        if not all_or_nothing and (done_now % IMPORT_PROGRESS_EVERY == 0 or done_now == total):
            save(report, total=total)
            db.session.commit()
            tasks.pause_after_batch()

    try:
        report = import_csv(raw, actor=actor, structure=structure,
                            all_or_nothing=all_or_nothing, progress=progress, done=done)
    except CatalogueError as error:
        db.session.rollback()
        row = save(erreur=error.message)
        row.status, row.ended_at = JobRunStatus.ECHEC, clock.now()
        db.session.commit()
        return
    if report.cancelled:
        db.session.rollback()
    row = save(report, reprise=len(done), lignes=None, rapport=report.as_dict())
    row.rows_changed = report.imported
    row.status, row.ended_at = JobRunStatus.SUCCES, clock.now()
    db.session.commit()


# -- maintenance: archive, delete, restore -----------------------------------------------
def archive_formation(formation: Formation, *, actor: User):
    return workflow.fire(formation, "archiver", actor=actor)


def delete_formation(formation: Formation, *, actor: User):
    return workflow.fire(formation, "supprimer", actor=actor)


def restore_formation(formation: Formation, *, actor: User):
    """Back to ``brouillon``: no validated version any more (it is out of search)."""
    log = workflow.fire(formation, "restaurer", actor=actor)
    formation.validated_snapshot = None
    return log


def _sync_snapshot_state(session: Session) -> None:
    """A cancelled or deleted session leaves search at once, pending changes or not."""
    formation = session.formation
    if formation.validated_snapshot:
        data = json.loads(json.dumps(formation.validated_snapshot))
        for item in data.get("sessions", []):
            if item.get("reference") == session.reference:
                item["state"] = session.state
        formation.validated_snapshot = data


def cancel_session(session: Session, *, actor: User, reason: str):
    """« Annuler la session » (motif obligatoire, checked by the workflow)."""
    log = workflow.fire(session, "annuler", actor=actor, reason=reason)
    _sync_snapshot_state(session)
    return log


def delete_session(session: Session, *, actor: User):
    """« Supprimer » a session entered by mistake; one with candidatures is cancelled
    instead (its candidates must be told why)."""
    if session_has_candidatures(session):
        raise CatalogueError("Cette session a reçu des candidatures : elle ne peut pas être "
                             "supprimée. Annulez-la en indiquant le motif.")
    log = workflow.fire(session, "supprimer", actor=actor)
    _sync_snapshot_state(session)
    return log


# -- entry points of HSP sessions --------------------------------------------------------
def entry_point_has_candidatures(entry_point: EntryPoint) -> bool:
    return bool(db.session.scalar(select(exists().where(
        Candidature.entry_point_id == entry_point.id))))


def parse_entry_point(session: Session, raw_date: str, raw_places: str, *,
                      entry_point: EntryPoint | None = None) -> tuple[dt.date, int]:
    raw_date, raw_places = (raw_date or "").strip(), (raw_places or "").strip()
    date = None
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            date = dt.datetime.strptime(raw_date, fmt).date()
            break
        except ValueError:
            continue
    if date is None:
        raise CatalogueError("Point d'entrée : indiquez une date valide au format jj/mm/aaaa.",
                             "date_entree")
    if not raw_places.isdigit():
        raise CatalogueError("Point d'entrée : indiquez un nombre de places entier, en "
                             "chiffres.", "places")
    if not (session.date_debut <= date <= session.date_fin):
        raise CatalogueError("Point d'entrée : la date doit être comprise dans la période de "
                             "la session.", "date_entree")
    if any(p.date_entree == date and p is not entry_point for p in session.entry_points):
        raise CatalogueError("Point d'entrée : cette date existe déjà pour la session.",
                             "date_entree")
    return date, int(raw_places)


def add_entry_point(session: Session, raw_date: str, raw_places: str, *,
                    actor: User) -> EntryPoint:
    date, places = parse_entry_point(session, raw_date, raw_places)
    mark_edited(session.formation)
    entry_point = EntryPoint(session=session, date_entree=date, places=places)
    db.session.add(entry_point)
    db.session.flush()
    return entry_point


def update_entry_point(entry_point: EntryPoint, raw_date: str, raw_places: str, *,
                       actor: User) -> EntryPoint:
    session = entry_point.session
    date, places = parse_entry_point(session, raw_date, raw_places, entry_point=entry_point)
    if date != entry_point.date_entree and entry_point_has_candidatures(entry_point):
        raise CatalogueError("Des candidatures portent sur ce point d'entrée : sa date ne "
                             "peut plus être modifiée. Ajoutez un nouveau point d'entrée.",
                             "date_entree")
    mark_edited(session.formation)
    entry_point.date_entree, entry_point.places = date, places
    db.session.flush()
    return entry_point


def delete_entry_point(entry_point: EntryPoint, *, actor: User) -> None:
    if entry_point_has_candidatures(entry_point):
        raise CatalogueError("Ce point d'entrée ne peut pas être supprimé : des candidatures "
                             "portent sur lui. Modifiez plutôt son nombre de places.")
    mark_edited(entry_point.session.formation)
    entry_point.session.entry_points.remove(entry_point)
    db.session.delete(entry_point)
    db.session.flush()
