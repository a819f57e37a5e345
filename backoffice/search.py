"""Search of the training offer: one function, ``search_sessions``, on both databases.

Keywords match *words as written* (guide 002: « les formations où ce mot apparaît tel
quel »): every term must be found in the intitulé, objectif or programme of the
formation, accents and case ignored — or the text is an exact session reference
(CARIF number), formation reference or market number.

The keyword part goes through a real full-text index, kept in a side table that
database triggers maintain on every insert, update and delete of a formation (the
catalogue views, the admin, imports and raw SQL alike):

* SQLite: an FTS5 virtual table ``formation_search`` (``unicode61 remove_diacritics 2``
  tokenizer: case and accents folded), rowid = formation id.
* PostgreSQL: a table ``formation_search(formation_id, document tsvector)`` with a GIN
  index; the document is ``to_tsvector('simple', …)`` of the text folded by an IMMUTABLE
  wrapper around ``unaccent``. The ``simple`` configuration (no French stemming, no stop
  words) is deliberate: stemming would make PostgreSQL find "boulangerie" for
  "boulanger" where SQLite does not, and the guide asks for words as written. Both
  databases therefore index the same tokens: runs of ``[a-z0-9]`` after folding.

A formation being modified (``modifiee``) is found by its *validated* text (the
``validated_snapshot``), which is what search shows until the change is validated.
Session attributes (dates, commune, places, state) are read live from the ``session``
table by the filters, so a changed session is searched correctly at once.

``install(connection)`` creates the index (run by ``db.create_all()`` through an
``after_create`` listener, and by migration ``0003_search``); ``uninstall`` drops it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Integer, and_, column, event, func, or_, select, text
from sqlalchemy.orm import aliased, joinedload

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import (Candidature, CandidatureState, Commune, Dispositif, EntryPoint,
                               Formation, FormationState, Session, SessionState, Structure)
from backoffice.text import fold

MAX_DEPARTEMENTS = 5
MAX_COMMUNES = 3
MAX_ORGANISMES = 3
MAX_TERMS = 12
SEARCHABLE_FORMATION_STATES = (FormationState.VALIDEE, FormationState.MODIFIEE)
# Candidatures counted against the places of a session ("7/14" in the results).
COUNTED_STATES = (CandidatureState.EN_ATTENTE_VALIDATION, CandidatureState.EN_ATTENTE_AVIS,
                  CandidatureState.RETENUE)
INDEX_TABLE = "formation_search"


# -- the index: DDL on both databases ---------------------------------------------------
def _sqlite_text(prefix: str, name: str) -> str:
    value = f"{prefix}{name}"
    if name in ("intitule", "objectif"):
        value = (f"CASE WHEN {prefix}state = 'modifiee' THEN coalesce(json_extract("
                 f"{prefix}validated_snapshot, '$.{name}'), {value}) ELSE {value} END")
    return f"coalesce({value}, '')"


def _sqlite_document(prefix: str) -> str:
    text_ = " || ' ' || ".join(_sqlite_text(prefix, n)
                               for n in ("intitule", "objectif", "programme"))
    # Ligatures: unicode61 keeps "œ" as a letter, unaccent (PostgreSQL) and fold() give "oe".
    for ligature, letters in (("œ", "oe"), ("Œ", "oe"), ("æ", "ae"), ("Æ", "ae")):
        text_ = f"replace({text_}, '{ligature}', '{letters}')"
    return text_


SQLITE_INSTALL = [
    f"CREATE VIRTUAL TABLE {INDEX_TABLE} USING fts5("
    "document, tokenize = 'unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER {INDEX_TABLE}_ai AFTER INSERT ON formation BEGIN "
    f"INSERT INTO {INDEX_TABLE}(rowid, document) VALUES (new.id, {_sqlite_document('new.')}); "
    "END",
    f"CREATE TRIGGER {INDEX_TABLE}_au AFTER UPDATE ON formation BEGIN "
    f"DELETE FROM {INDEX_TABLE} WHERE rowid = old.id; "
    f"INSERT INTO {INDEX_TABLE}(rowid, document) VALUES (new.id, {_sqlite_document('new.')}); "
    "END",
    f"CREATE TRIGGER {INDEX_TABLE}_ad AFTER DELETE ON formation BEGIN "
    f"DELETE FROM {INDEX_TABLE} WHERE rowid = old.id; END",
    f"INSERT INTO {INDEX_TABLE}(rowid, document) "
    f"SELECT id, {_sqlite_document('formation.')} FROM formation",
]
SQLITE_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS {INDEX_TABLE}_ai",
    f"DROP TRIGGER IF EXISTS {INDEX_TABLE}_au",
    f"DROP TRIGGER IF EXISTS {INDEX_TABLE}_ad",
    f"DROP TABLE IF EXISTS {INDEX_TABLE}",
]


def _pg_text(prefix: str, name: str) -> str:
    value = f"{prefix}{name}"
    if name in ("intitule", "objectif"):
        return (f"CASE WHEN {prefix}state = 'modifiee' THEN coalesce("
                f"{prefix}validated_snapshot ->> '{name}', {value}) ELSE {value} END")
    return value


def _pg_document(prefix: str) -> str:
    return ("backoffice_search_document(" + ", ".join(
        _pg_text(prefix, n) for n in ("intitule", "objectif", "programme")) + ")")


POSTGRESQL_INSTALL = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    # unaccent() is STABLE (it reads a dictionary); an index needs an IMMUTABLE function.
    "CREATE OR REPLACE FUNCTION backoffice_unaccent(text) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
    "AS $$ SELECT unaccent('unaccent'::regdictionary, $1) $$",
    "CREATE OR REPLACE FUNCTION backoffice_search_document(text, text, text) "
    "RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE "
    "AS $$ SELECT to_tsvector('simple'::regconfig, regexp_replace(lower(backoffice_unaccent("
    "concat_ws(' ', $1, $2, $3))), '[^a-z0-9]+', ' ', 'g')) $$",
    f"CREATE TABLE {INDEX_TABLE} ("
    "formation_id integer PRIMARY KEY REFERENCES formation (id) ON DELETE CASCADE, "
    "document tsvector NOT NULL)",
    f"CREATE INDEX ix_{INDEX_TABLE}_document ON {INDEX_TABLE} USING gin (document)",
    f"CREATE OR REPLACE FUNCTION {INDEX_TABLE}_refresh() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    f"INSERT INTO {INDEX_TABLE} (formation_id, document) "
    f"VALUES (NEW.id, {_pg_document('NEW.')}) "
    "ON CONFLICT (formation_id) DO UPDATE SET document = EXCLUDED.document; "
    "RETURN NULL; END $$",
    f"CREATE TRIGGER {INDEX_TABLE}_refresh AFTER INSERT OR UPDATE ON formation "
    f"FOR EACH ROW EXECUTE FUNCTION {INDEX_TABLE}_refresh()",
    f"INSERT INTO {INDEX_TABLE} (formation_id, document) "
    f"SELECT id, {_pg_document('formation.')} FROM formation",
]
POSTGRESQL_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS {INDEX_TABLE}_refresh ON formation",
    f"DROP FUNCTION IF EXISTS {INDEX_TABLE}_refresh()",
    f"DROP TABLE IF EXISTS {INDEX_TABLE}",
    "DROP FUNCTION IF EXISTS backoffice_search_document(text, text, text)",
    "DROP FUNCTION IF EXISTS backoffice_unaccent(text)",
]


def install(connection) -> None:
    """Create the full-text index of the catalogue (idempotent: drops it first)."""
    uninstall(connection)
    statements = (POSTGRESQL_INSTALL if connection.dialect.name == "postgresql"
                  else SQLITE_INSTALL)
    for statement in statements:
        connection.exec_driver_sql(statement)


def uninstall(connection) -> None:
    statements = (POSTGRESQL_UNINSTALL if connection.dialect.name == "postgresql"
                  else SQLITE_UNINSTALL)
    for statement in statements:
        if statement.startswith("DROP TRIGGER") and connection.dialect.name == "postgresql" \
                and not _table_exists(connection, "formation"):
            continue
        connection.exec_driver_sql(statement)


def _table_exists(connection, name: str) -> bool:
    return connection.exec_driver_sql(
        "SELECT to_regclass(%(name)s) IS NOT NULL", {"name": name}).scalar()


def _concerns_formation(kw) -> bool:
    return any(getattr(table, "name", None) == "formation" for table in kw.get("tables") or ())


def _after_create(target, connection, **kw) -> None:
    if _concerns_formation(kw):
        install(connection)


def _before_drop(target, connection, **kw) -> None:
    if _concerns_formation(kw):
        uninstall(connection)


event.listen(db.metadata, "after_create", _after_create)
event.listen(db.metadata, "before_drop", _before_drop)


def is_index_object(name: str | None) -> bool:
    """Objects of the index, unknown to the models (ignored by alembic's compare)."""
    return bool(name) and name.startswith(INDEX_TABLE)


# -- the query ----------------------------------------------------------------------------
class SearchError(ValueError):
    """Criteria beyond the limits; ``message`` is French."""

    def __init__(self, messages: list[str]):
        super().__init__(" ".join(messages))
        self.messages = messages


@dataclasses.dataclass
class Criteria:
    q: str = ""
    dispositif: str | None = None
    departements: list[str] = dataclasses.field(default_factory=list)
    communes: list[str] = dataclasses.field(default_factory=list)  # code postal or name
    organismes: list[int] = dataclasses.field(default_factory=list)
    exclude_started: bool = False
    include_ended: bool = False

    def problems(self) -> list[str]:
        problems = []
        if len(self.departements) > MAX_DEPARTEMENTS:
            problems.append(f"Choisissez au plus {MAX_DEPARTEMENTS} départements "
                            f"({len(self.departements)} choisis).")
        if len(self.communes) > MAX_COMMUNES:
            problems.append(f"Choisissez au plus {MAX_COMMUNES} villes "
                            f"({len(self.communes)} choisies).")
        if self.departements and self.communes:
            problems.append("Choisissez des départements ou des villes, pas les deux.")
        if len(self.organismes) > MAX_ORGANISMES:
            problems.append(f"Choisissez au plus {MAX_ORGANISMES} organismes de formation "
                            f"({len(self.organismes)} choisis).")
        if self.dispositif and self.dispositif not in {d.value for d in Dispositif}:
            problems.append("Ce dispositif n'existe pas.")
        if len(fold(self.q).split()) > MAX_TERMS:
            problems.append(f"Saisissez au plus {MAX_TERMS} mots-clés.")
        return problems


@dataclasses.dataclass
class Facet:
    value: str
    label: str
    count: int


@dataclasses.dataclass
class Row:
    session: Session
    next_entry: dt.date | None
    candidatures: int
    places: int | None


@dataclasses.dataclass
class Result:
    rows: list[Row]
    total: int
    page: int
    per_page: int
    facets: dict[str, list[Facet]]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def session_ids(self) -> list[int]:
        return [row.session.id for row in self.rows]


def terms_of(q: str) -> list[str]:
    """The words of a query as the index holds them: folded, ``[a-z0-9]+``."""
    return fold(q).split()[:MAX_TERMS]


def _matching_formations(terms: list[str]):
    """The ids of the formations whose text holds every term (the full-text index)."""
    if db.engine.dialect.name == "postgresql":
        return text(f"SELECT formation_id FROM {INDEX_TABLE} "
                    "WHERE document @@ to_tsquery('simple', :fts_query)").bindparams(
            fts_query=" & ".join(terms)).columns(column("formation_id", Integer))
    return text(f"SELECT rowid FROM {INDEX_TABLE} WHERE {INDEX_TABLE} MATCH :fts_query"
                ).bindparams(fts_query=" AND ".join(f'"{t}"' for t in terms)).columns(
        column("rowid", Integer))


def keyword_condition(q: str):
    raw = (q or "").strip()
    if not raw:
        return None
    conditions = [Session.reference == raw, Formation.reference == raw,
                  Formation.numero_marche == raw]
    terms = terms_of(raw)
    if terms:
        conditions.append(Formation.id.in_(_matching_formations(terms)))
    return or_(*conditions)


def _organisme_id():
    return func.coalesce(Session.organisme_formateur_id, Formation.organisme_formateur_id,
                         Formation.structure_id)


def _conditions(criteria: Criteria, today: dt.date) -> dict[str, list]:
    """Conditions grouped by the facet they belong to (a facet's counts ignore its own
    filter, so that the user sees what the other values would give)."""
    base = [Formation.state.in_(SEARCHABLE_FORMATION_STATES),
            Session.state == SessionState.ACTIVE]
    if not criteria.include_ended:
        base.append(Session.date_fin >= today)
    if criteria.exclude_started:
        base.append(Session.date_debut > today)
    keyword = keyword_condition(criteria.q)
    if keyword is not None:
        base.append(keyword)
    groups: dict[str, list] = {"base": base, "dispositif": [], "departement": [],
                               "organisme": []}
    if criteria.dispositif:
        groups["dispositif"].append(Formation.dispositif == criteria.dispositif)
    if criteria.departements:
        groups["departement"].append(Commune.departement.in_(criteria.departements))
    if criteria.communes:
        wanted = [c.strip() for c in criteria.communes if c.strip()]
        codes = [c for c in wanted if c.isdigit()]
        names = [c.lower() for c in wanted if not c.isdigit()]
        groups["departement"].append(or_(Commune.code_postal.in_(codes),
                                         func.lower(Commune.nom).in_(names)))
    if criteria.organismes:
        groups["organisme"].append(_organisme_id().in_(criteria.organismes))
    return groups


def _base_query(*columns):
    return (select(*columns).select_from(Session)
            .join(Formation, Formation.id == Session.formation_id)
            .outerjoin(Commune, Commune.id == Session.commune_id))


def search_sessions(criteria: Criteria, *, page: int = 1, per_page: int = 20,
                    today: dt.date | None = None) -> Result:
    """The sessions matching ``criteria``, one page of them, with the counts per value
    of the dispositif, département and organisme filters. Raises ``SearchError``."""
    problems = criteria.problems()
    if problems:
        raise SearchError(problems)
    today = today or clock.today()
    groups = _conditions(criteria, today)
    every = [c for conditions in groups.values() for c in conditions]

    total = db.session.scalar(_base_query(func.count(Session.id)).where(*every)) or 0
    page = max(1, min(page, max(1, -(-total // per_page))))
    ids = list(db.session.scalars(
        _base_query(Session.id).where(*every)
        .order_by(Session.date_debut, Session.reference)
        .offset((page - 1) * per_page).limit(per_page)))
    sessions = {s.id: s for s in db.session.scalars(
        select(Session).where(Session.id.in_(ids)).options(
            joinedload(Session.formation).joinedload(Formation.organisme_formateur),
            joinedload(Session.formation).joinedload(Formation.structure),
            joinedload(Session.commune), joinedload(Session.organisme_formateur)))} if ids else {}
    stats = session_stats(ids, today)
    rows = [Row(sessions[i], *stats.get(i, (None, 0, sessions[i].places))) for i in ids]
    return Result(rows=rows, total=total, page=page, per_page=per_page,
                  facets=_facets(groups))


def session_stats(session_ids: list[int], today: dt.date) -> dict[int, tuple]:
    """Per session: the next entry point's date, the candidatures counted against the
    places and those places — for the next entry point when there is one (HSP)."""
    if not session_ids:
        return {}
    upcoming = (select(EntryPoint.session_id, func.min(EntryPoint.date_entree).label("day"))
                .where(EntryPoint.session_id.in_(session_ids), EntryPoint.date_entree >= today)
                .group_by(EntryPoint.session_id).subquery())
    point = aliased(EntryPoint)
    rows = db.session.execute(
        select(Session.id, upcoming.c.day, point.id, point.places, Session.places)
        .outerjoin(upcoming, upcoming.c.session_id == Session.id)
        .outerjoin(point, and_(point.session_id == Session.id,
                               point.date_entree == upcoming.c.day))
        .where(Session.id.in_(session_ids))).all()
    counted = Candidature.state.in_(COUNTED_STATES)
    per_session = dict(db.session.execute(
        select(Candidature.session_id, func.count(Candidature.id))
        .where(Candidature.session_id.in_(session_ids), counted)
        .group_by(Candidature.session_id)).all())
    point_ids = [r[2] for r in rows if r[2] is not None]
    per_point = dict(db.session.execute(
        select(Candidature.entry_point_id, func.count(Candidature.id))
        .where(Candidature.entry_point_id.in_(point_ids), counted)
        .group_by(Candidature.entry_point_id)).all()) if point_ids else {}
    stats = {}
    for session_id, day, point_id, point_places, places in rows:
        if point_id is not None:
            stats[session_id] = (day, per_point.get(point_id, 0), point_places)
        else:
            stats[session_id] = (None, per_session.get(session_id, 0), places)
    return stats


def _facets(groups: dict[str, list]) -> dict[str, list[Facet]]:
    def others(name):
        return [c for key, conditions in groups.items() if key != name for c in conditions]

    labels = Dispositif.labels()
    dispositifs = db.session.execute(
        _base_query(Formation.dispositif, func.count(Session.id)).where(*others("dispositif"))
        .group_by(Formation.dispositif).order_by(Formation.dispositif)).all()
    departements = db.session.execute(
        _base_query(Commune.departement, func.count(Session.id))
        .where(*others("departement"), Commune.departement.is_not(None))
        .group_by(Commune.departement).order_by(Commune.departement)).all()
    organisme = _organisme_id().label("organisme_id")
    organismes = db.session.execute(
        _base_query(organisme, func.count(Session.id)).where(*others("organisme"))
        .group_by(organisme).order_by(func.count(Session.id).desc(), organisme).limit(30)).all()
    names = dict(db.session.execute(select(Structure.id, Structure.raison_sociale).where(
        Structure.id.in_([o for o, _ in organismes]))).all()) if organismes else {}
    return {
        "dispositif": [Facet(code or "", labels.get(code, code or "Non renseigné"), n)
                       for code, n in dispositifs],
        "departement": [Facet(code, code, n) for code, n in departements],
        "organisme": [Facet(str(ident), names.get(ident, "?"), n) for ident, n in organismes],
    }


def display_intitule(formation: Formation) -> str:
    """What search shows: the validated text while a change waits for moderation."""
    if formation.state == FormationState.MODIFIEE and formation.validated_snapshot:
        return formation.validated_snapshot.get("intitule") or formation.intitule
    return formation.intitule


__all__ = ["Criteria", "Result", "Row", "SearchError", "search_sessions", "install",
           "uninstall", "keyword_condition", "display_intitule"]
