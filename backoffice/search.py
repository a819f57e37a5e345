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

On PostgreSQL the words of each document are also kept, by a trigger on
``formation_search``, in ``formation_search_term(term, formation_id)``: a keyword's
formations come from that B-tree alone (GIN gives no index-only scan). The searchable
sessions are in ``formation_search_session`` (filters, facets and sort read only it) and
their count per organisme in ``formation_search_organisme``, both kept by triggers.

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

from flask import current_app, g
from sqlalchemy import (Date, Integer, String, and_, case, column, create_engine, event, func,
                        literal_column, or_, orm, select, table, text, union_all)
from sqlalchemy.orm import aliased, joinedload

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import (DEPARTEMENTS_NOUVELLE_AQUITAINE, Candidature, CandidatureState,
                               Dispositif, EntryPoint, Formation, FormationState, Session,
                               SessionState, Structure)
from backoffice.text import fold

MAX_DEPARTEMENTS = 5
MAX_COMMUNES = 3
MAX_ORGANISMES = 3
MAX_TERMS = 12
# Without keyword, the counts per dispositif and per département stop there (« plus de
# 1 000 »): counting the ≈ 120,000 open sessions per value is what made search slow.
CAP = 1000
TOTAL_CAP = 10_000  # and the total (« plus de 10 000 sessions »), still 500 pages of 20
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
    # Written only when the document changes (most updates of a formation do not touch
    # its texts): the GIN index and the words below are not rewritten for nothing.
    f"CREATE OR REPLACE FUNCTION {INDEX_TABLE}_refresh() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    f"INSERT INTO {INDEX_TABLE} (formation_id, document) "
    f"VALUES (NEW.id, {_pg_document('NEW.')}) "
    "ON CONFLICT (formation_id) DO UPDATE SET document = EXCLUDED.document "
    f"WHERE {INDEX_TABLE}.document IS DISTINCT FROM EXCLUDED.document; "
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


# -- PostgreSQL: the words of each document in a B-tree --------------------------------------
# The GIN index finds the documents holding a word, but PostgreSQL must then read each
# matching row of ``formation_search`` for its formation id (no index-only scan on GIN):
# 4,343 pages and 17 ms for the 5,704 formations of « vente » at scale 25. The same words
# in a table keyed by (term, formation_id) give the ids from the index alone (0.8 ms); a
# trigger on ``formation_search`` keeps it in step with the documents.
TERM_TABLE = "formation_search_term"
POSTGRESQL_TERMS_INSTALL = [
    f"CREATE TABLE {TERM_TABLE} (term text NOT NULL, formation_id integer NOT NULL "
    f"REFERENCES {INDEX_TABLE} (formation_id) ON DELETE CASCADE, "
    "PRIMARY KEY (term, formation_id))",
    f"CREATE INDEX ix_{TERM_TABLE}_formation ON {TERM_TABLE} (formation_id)",
    f"CREATE OR REPLACE FUNCTION {TERM_TABLE}_refresh() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    f"IF TG_OP = 'UPDATE' THEN DELETE FROM {TERM_TABLE} WHERE formation_id = OLD.formation_id; "
    "END IF; "
    f"INSERT INTO {TERM_TABLE} (term, formation_id) "
    "SELECT DISTINCT word, NEW.formation_id FROM unnest(tsvector_to_array(NEW.document)) word; "
    "RETURN NULL; END $$",
    f"CREATE TRIGGER {TERM_TABLE}_refresh AFTER INSERT OR UPDATE OF document ON {INDEX_TABLE} "
    f"FOR EACH ROW EXECUTE FUNCTION {TERM_TABLE}_refresh()",
    f"INSERT INTO {TERM_TABLE} (term, formation_id) SELECT DISTINCT word, formation_id "
    f"FROM {INDEX_TABLE}, unnest(tsvector_to_array(document)) word",
    f"ANALYZE {TERM_TABLE}",
]
POSTGRESQL_TERMS_UNINSTALL = [
    f"DROP TABLE IF EXISTS {TERM_TABLE}",
    f"DROP FUNCTION IF EXISTS {TERM_TABLE}_refresh() CASCADE",
]


def install_terms(connection) -> None:
    """PostgreSQL: the table of the documents' words and its trigger (idempotent; nothing
    on SQLite, whose FTS5 table gives the ids itself)."""
    if connection.dialect.name == "postgresql":
        uninstall_terms(connection)
        for statement in POSTGRESQL_TERMS_INSTALL:
            connection.exec_driver_sql(statement)


def uninstall_terms(connection) -> None:
    if connection.dialect.name == "postgresql":
        for statement in POSTGRESQL_TERMS_UNINSTALL:
            connection.exec_driver_sql(statement)


# -- the searchable sessions: DDL on both databases --------------------------------------
# One row per searchable session (active, of a validated or modified formation), with the
# columns the filters, facets and sort read, so that a search never joins formation and
# commune nor scans sessions that cannot be found. Triggers on session, formation and
# commune keep it in step (delete the rows concerned, select them again).
SESSION_TABLE = "formation_search_session"
SESSIONS = table(
    SESSION_TABLE, column("session_id", Integer), column("formation_id", Integer),
    column("date_debut", Date), column("date_fin", Date), column("reference", String),
    column("dispositif", String), column("departement", String),
    column("code_postal", String), column("commune_nom", String),
    column("organisme_id", Integer))
_SESSION_COLUMNS = ("session_id, formation_id, date_debut, date_fin, reference, dispositif, "
                    "departement, code_postal, commune_nom, organisme_id")
_SESSION_DDL = [
    f"CREATE TABLE {SESSION_TABLE} ("
    "session_id integer PRIMARY KEY REFERENCES session (id) ON DELETE CASCADE, "
    "formation_id integer NOT NULL, date_debut date NOT NULL, date_fin date NOT NULL, "
    "reference varchar(8) NOT NULL, dispositif varchar(30), departement varchar(3), "
    "code_postal varchar(5), commune_nom varchar(100), organisme_id integer NOT NULL)",
    # The sort of the results (and its walk for the first pages).
    f"CREATE INDEX ix_{SESSION_TABLE}_order ON {SESSION_TABLE} (date_debut, reference, date_fin)",
    # Keyword searches: from the matching formations to their sessions.
    f"CREATE INDEX ix_{SESSION_TABLE}_formation ON {SESSION_TABLE} (formation_id)",
    # Without keyword, the total and each facet read an index holding every column their
    # filters test, led by the facet's own column (counts per value, grouping in order);
    # dispositif and département together: a value of one with the other's filter.
    f"CREATE INDEX ix_{SESSION_TABLE}_open ON {SESSION_TABLE} "
    "(date_fin, dispositif, departement, organisme_id)",
    f"CREATE INDEX ix_{SESSION_TABLE}_dispositif ON {SESSION_TABLE} "
    "(dispositif, departement, date_fin, organisme_id)",
    f"CREATE INDEX ix_{SESSION_TABLE}_departement ON {SESSION_TABLE} "
    "(departement, dispositif, date_fin, organisme_id)",
    f"CREATE INDEX ix_{SESSION_TABLE}_organisme ON {SESSION_TABLE} "
    "(organisme_id, date_fin, dispositif, departement)",
    f"CREATE INDEX ix_{SESSION_TABLE}_code_postal ON {SESSION_TABLE} (code_postal)",
    f"CREATE INDEX ix_{SESSION_TABLE}_commune_nom ON {SESSION_TABLE} (commune_nom)",
]
_SESSION_STATES = ", ".join(f"'{s}'" for s in SEARCHABLE_FORMATION_STATES)


def _session_rows(where: str) -> str:
    """INSERT … SELECT of the searchable sessions satisfying ``where`` (on session s)."""
    return (f"INSERT INTO {SESSION_TABLE} ({_SESSION_COLUMNS}) "
            "SELECT s.id, s.formation_id, s.date_debut, s.date_fin, s.reference, f.dispositif, "
            "c.departement, c.code_postal, lower(c.nom), "
            "coalesce(s.organisme_formateur_id, f.organisme_formateur_id, f.structure_id) "
            "FROM session s JOIN formation f ON f.id = s.formation_id "
            "LEFT JOIN commune c ON c.id = s.commune_id "
            f"WHERE f.state IN ({_SESSION_STATES}) AND s.state = '{SessionState.ACTIVE}' "
            f"AND {where}")


_SESSION_DELETE = f"DELETE FROM {SESSION_TABLE} WHERE "
# Columns whose change moves a session in or out of the table, or changes its row.
_WATCHED = {
    "session": "formation_id, date_debut, date_fin, reference, commune_id, "
               "organisme_formateur_id, state",
    "formation": "state, dispositif, organisme_formateur_id, structure_id",
    "commune": "departement, code_postal, nom",
}
_REFRESH = {  # table: (rows to delete for OLD, rows to insert for NEW), on session s
    "session": ("session_id = {o}.id", "s.id = {n}.id"),
    "formation": ("formation_id = {o}.id", "s.formation_id = {n}.id"),
    "commune": ("session_id IN (SELECT id FROM session WHERE commune_id = {o}.id)",
                "s.commune_id = {n}.id"),
}

# The searchable sessions per organisme, kept by triggers on the table above (its rows are
# only inserted and deleted): the organisme facet without keyword nor other filter reads
# these 3,750 counters at scale 25 instead of grouping the 118,000 open sessions (25 ms on
# PostgreSQL), less the ended sessions still in the table (an index range, grouped).
COUNT_TABLE = "formation_search_organisme"
ORGANISME_COUNTS = table(COUNT_TABLE, column("organisme_id", Integer),
                         column("sessions", Integer))
_COUNT_DDL = [
    f"CREATE TABLE {COUNT_TABLE} (organisme_id integer PRIMARY KEY, "
    "sessions integer NOT NULL)",
    f"INSERT INTO {COUNT_TABLE} (organisme_id, sessions) "
    f"SELECT organisme_id, count(*) FROM {SESSION_TABLE} GROUP BY organisme_id",
]
_COUNT_ADD = (f"INSERT INTO {COUNT_TABLE} (organisme_id, sessions) VALUES ({{n}}.organisme_id, 1) "
              f"ON CONFLICT (organisme_id) DO UPDATE SET sessions = {COUNT_TABLE}.sessions + 1")
_COUNT_REMOVE = (f"UPDATE {COUNT_TABLE} SET sessions = sessions - 1 "
                 "WHERE organisme_id = {o}.organisme_id")

SQLITE_SESSIONS_INSTALL = _SESSION_DDL + [
    statement for name, (gone, rows) in _REFRESH.items() for statement in (
        f"CREATE TRIGGER {SESSION_TABLE}_{name}_ai AFTER INSERT ON {name} BEGIN "
        f"{_session_rows(rows.format(n='new'))}; END",
        f"CREATE TRIGGER {SESSION_TABLE}_{name}_au AFTER UPDATE OF {_WATCHED[name]} ON {name} "
        f"BEGIN {_SESSION_DELETE}{gone.format(o='old')}; "
        f"{_session_rows(rows.format(n='new'))}; END",
        f"CREATE TRIGGER {SESSION_TABLE}_{name}_ad AFTER DELETE ON {name} BEGIN "
        f"{_SESSION_DELETE}{gone.format(o='old')}; END")
] + [_session_rows("1 = 1"), f"ANALYZE {SESSION_TABLE}"] + _COUNT_DDL + [
    f"CREATE TRIGGER {COUNT_TABLE}_ai AFTER INSERT ON {SESSION_TABLE} BEGIN "
    f"{_COUNT_ADD.format(n='new')}; END",
    f"CREATE TRIGGER {COUNT_TABLE}_ad AFTER DELETE ON {SESSION_TABLE} BEGIN "
    f"{_COUNT_REMOVE.format(o='old')}; END",
]
SQLITE_SESSIONS_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS {SESSION_TABLE}_{name}_{event_}"
    for name in _REFRESH for event_ in ("ai", "au", "ad")
] + [f"DROP TRIGGER IF EXISTS {COUNT_TABLE}_{event_}" for event_ in ("ai", "ad")] + [
    f"DROP TABLE IF EXISTS {COUNT_TABLE}", f"DROP TABLE IF EXISTS {SESSION_TABLE}"]

POSTGRESQL_SESSIONS_INSTALL = _SESSION_DDL + [
    statement for name, (gone, rows) in _REFRESH.items() for statement in (
        f"CREATE OR REPLACE FUNCTION {SESSION_TABLE}_{name}() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_SESSION_DELETE}{gone.format(o='OLD')}; END IF; "
        f"IF TG_OP <> 'DELETE' THEN {_session_rows(rows.format(n='NEW'))}; END IF; "
        "RETURN NULL; END $$",
        f"CREATE TRIGGER {SESSION_TABLE}_{name}_change AFTER INSERT OR DELETE OR UPDATE OF "
        f"{_WATCHED[name]} ON {name} FOR EACH ROW EXECUTE FUNCTION {SESSION_TABLE}_{name}()")
] + [_session_rows("true"), f"ANALYZE {SESSION_TABLE}"] + _COUNT_DDL + [
    f"CREATE OR REPLACE FUNCTION {COUNT_TABLE}_count() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    f"IF TG_OP = 'INSERT' THEN {_COUNT_ADD.format(n='NEW')}; "
    f"ELSE {_COUNT_REMOVE.format(o='OLD')}; END IF; RETURN NULL; END $$",
    f"CREATE TRIGGER {COUNT_TABLE}_count AFTER INSERT OR DELETE ON {SESSION_TABLE} "
    f"FOR EACH ROW EXECUTE FUNCTION {COUNT_TABLE}_count()",
    # TRUNCATE fires no row trigger (a TRUNCATE … CASCADE of session empties the table)
    f"CREATE OR REPLACE FUNCTION {COUNT_TABLE}_empty() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN TRUNCATE {COUNT_TABLE}; RETURN NULL; END $$",
    f"CREATE TRIGGER {COUNT_TABLE}_empty AFTER TRUNCATE ON {SESSION_TABLE} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {COUNT_TABLE}_empty()",
]
POSTGRESQL_SESSIONS_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS {SESSION_TABLE}_{name}_change ON {name}" for name in _REFRESH
] + [f"DROP TRIGGER IF EXISTS {COUNT_TABLE}_{name} ON {SESSION_TABLE}"
     for name in ("count", "empty")] + [
    f"DROP TABLE IF EXISTS {COUNT_TABLE}", f"DROP TABLE IF EXISTS {SESSION_TABLE}",
    f"DROP FUNCTION IF EXISTS {COUNT_TABLE}_count()",
    f"DROP FUNCTION IF EXISTS {COUNT_TABLE}_empty()"] + [
    f"DROP FUNCTION IF EXISTS {SESSION_TABLE}_{name}()" for name in _REFRESH]


def install_sessions(connection) -> None:
    """Create the table of searchable sessions and its triggers (idempotent)."""
    uninstall_sessions(connection)
    postgresql = connection.dialect.name == "postgresql"
    for statement in POSTGRESQL_SESSIONS_INSTALL if postgresql else SQLITE_SESSIONS_INSTALL:
        connection.exec_driver_sql(statement)


def uninstall_sessions(connection, *, counts_only: bool = False) -> None:
    """Drop the table of searchable sessions and its triggers — or, ``counts_only``, only
    the counters per organisme and their triggers (migration 0013's downgrade)."""
    postgresql = connection.dialect.name == "postgresql"
    for statement in (POSTGRESQL_SESSIONS_UNINSTALL if postgresql
                      else SQLITE_SESSIONS_UNINSTALL):
        if counts_only and COUNT_TABLE not in statement:
            continue
        if postgresql and statement.startswith("DROP TRIGGER") and not _table_exists(
                connection, statement.rsplit(" ON ", 1)[1]):
            continue
        connection.exec_driver_sql(statement)


def install(connection) -> None:
    """Create the full-text index of the catalogue (idempotent: drops it first)."""
    uninstall(connection)
    statements = (POSTGRESQL_INSTALL if connection.dialect.name == "postgresql"
                  else SQLITE_INSTALL)
    for statement in statements:
        connection.exec_driver_sql(statement)


def uninstall(connection) -> None:
    uninstall_terms(connection)
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
        install_terms(connection)
        install_sessions(connection)


def _before_drop(target, connection, **kw) -> None:
    if _concerns_formation(kw):
        uninstall_sessions(connection)
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
    count: int  # CAP + 1 when capped: more than CAP
    capped: bool = False

    @property
    def shown(self) -> str:
        """The count as the page shows it: « plus de 1 000 » when capped beyond ``CAP``."""
        if self.capped and self.count > CAP:
            return f"plus de {CAP:,}".replace(",", " ")
        return str(self.count)


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
    capped: bool = False  # the total stopped at TOTAL_CAP + 1

    @property
    def total_shown(self) -> str:
        """The total as the page shows it: « plus de 10 000 » when capped."""
        if self.capped and self.total > TOTAL_CAP:
            return f"plus de {TOTAL_CAP:,}".replace(",", " ")
        return f"{self.total:,}".replace(",", " ")

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def session_ids(self) -> list[int]:
        return [row.session.id for row in self.rows]


def terms_of(q: str) -> list[str]:
    """The words of a query as the index holds them: folded, ``[a-z0-9]+``."""
    return fold(q).split()[:MAX_TERMS]


def _matching_formations(terms: list[str], dialect: str | None = None):
    """The ids of the formations whose text holds every term (the full-text index)."""
    if (dialect or db.engine.dialect.name) == "postgresql":
        words = sorted(set(terms))  # every word once: a formation holds all of them
        matching = select(column("formation_id", Integer)).select_from(table(TERM_TABLE)).where(
            column("term", String).in_(words))
        if len(words) > 1:
            matching = matching.group_by(column("formation_id")).having(
                func.count() == len(words))
        return matching
    return text(f"SELECT rowid FROM {INDEX_TABLE} WHERE {INDEX_TABLE} MATCH :fts_query"
                ).bindparams(fts_query=" AND ".join(f'"{t}"' for t in terms)).columns(
        column("rowid", Integer))


def reader():
    """The ORM session search reads with: ``db.session``, or — when ``SEARCH_DATABASE_URL``
    is set (a read replica) — a session on that database, one per application context."""
    url = current_app.config.get("SEARCH_DATABASE_URL")
    if not url:
        return db.session
    if "search_session" not in g:
        engines = current_app.extensions.setdefault("search_engines", {})
        if url not in engines:
            engines[url] = create_engine(
                url.replace("postgresql://", "postgresql+psycopg://", 1),
                **current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
        g.search_session = orm.Session(bind=engines[url])
    return g.search_session


def _close_reader(_exc=None) -> None:
    reading = g.pop("search_session", None)
    if reading is not None:
        reading.close()


def init_app(app) -> None:
    app.teardown_appcontext(_close_reader)


# -- the search, on the table of searchable sessions ----------------------------------------
def _keyword_sessions(q: str, dialect: str):
    """The rows of searchable sessions matching ``q``: every term in the full-text index,
    or ``q`` is exactly a formation reference or market number — or, 8 characters long, a
    session reference (kept out of the common case: an OR with it defeats the indexes)."""
    raw = (q or "").strip()
    if not raw:
        return None
    formations = select(Formation.id).where(
        or_(Formation.reference == raw, Formation.numero_marche == raw))
    terms = terms_of(raw)
    if terms:
        formations = formations.union(_matching_formations(terms, dialect))
    if len(raw) != 8:  # session references are 8 characters (a CHECK of the table)
        return SESSIONS.c.formation_id.in_(formations)
    return SESSIONS.c.session_id.in_(
        select(SESSIONS.c.session_id).where(SESSIONS.c.formation_id.in_(formations))
        .union(select(Session.id).where(Session.reference == raw)))


def _filters(criteria: Criteria) -> dict[str, object]:
    """The condition of each facet's filter (a facet's counts ignore its own filter, so
    that the user sees what the other values would give)."""
    filters = {}
    if criteria.dispositif:
        filters["dispositif"] = SESSIONS.c.dispositif == criteria.dispositif
    if criteria.departements:
        filters["departement"] = SESSIONS.c.departement.in_(criteria.departements)
    if criteria.communes:
        wanted = [c.strip() for c in criteria.communes if c.strip()]
        filters["departement"] = or_(
            SESSIONS.c.code_postal.in_([c for c in wanted if c.isdigit()]),
            SESSIONS.c.commune_nom.in_([c.lower() for c in wanted if not c.isdigit()]))
    if criteria.organismes:
        filters["organisme"] = SESSIONS.c.organisme_id.in_(criteria.organismes)
    return filters


def search_sessions(criteria: Criteria, *, page: int = 1, per_page: int = 20,
                    today: dt.date | None = None) -> Result:
    """The sessions matching ``criteria``, one page of them, with the counts per value
    of the dispositif, département and organisme filters. Raises ``SearchError``.

    Reads the table of searchable sessions only (joined with the full-text index for
    keywords): one to five statements give the total, the three facets and the page's
    ids; then the page's rows and their places — at most eight, on ``reader()``."""
    problems = criteria.problems()
    if problems:
        raise SearchError(problems)
    today = today or clock.today()
    reading = reader()
    base = []
    if not criteria.include_ended:
        base.append(SESSIONS.c.date_fin >= today)
    if criteria.exclude_started:
        base.append(SESSIONS.c.date_debut > today)
    keyword = _keyword_sessions(criteria.q, reading.get_bind().dialect.name)
    if keyword is not None:
        base.append(keyword)
    filters = _filters(criteria)

    if keyword is None:
        total, facets = _broad_counts(reading, base, filters, criteria, today)
        page = max(1, min(page, max(1, -(-total // per_page))))
        ids = list(reading.scalars(
            select(SESSIONS.c.session_id).where(*base, *filters.values())
            .order_by(SESSIONS.c.date_debut, SESSIONS.c.reference)
            .offset((page - 1) * per_page).limit(per_page))) if total else []
    else:
        total, facets, page, ids = _keyword_search(reading, base, filters, page, per_page)
    sessions = {s.id: s for s in reading.scalars(
        select(Session).where(Session.id.in_(ids)).options(
            joinedload(Session.formation).joinedload(Formation.organisme_formateur),
            joinedload(Session.formation).joinedload(Formation.structure),
            joinedload(Session.commune), joinedload(Session.organisme_formateur)))} if ids else {}
    stats = session_stats(ids, today, reading)
    rows = [Row(sessions[i], *stats.get(i, (None, 0, sessions[i].places))) for i in ids]
    return Result(rows=rows, total=total, page=page, per_page=per_page, facets=facets,
                  capped=keyword is None)


_POINT = aliased(EntryPoint)  # built once (an alias per call costs ~1.7 ms)


def session_stats(session_ids: list[int], today: dt.date, reading=None) -> dict[int, tuple]:
    """Per session: the next entry point's date, the candidatures counted against the
    places and those places — for the next entry point when there is one (HSP)."""
    if not session_ids:
        return {}
    reading = reading or db.session
    upcoming = (select(EntryPoint.session_id, func.min(EntryPoint.date_entree).label("day"))
                .where(EntryPoint.session_id.in_(session_ids), EntryPoint.date_entree >= today)
                .group_by(EntryPoint.session_id).subquery())
    point = _POINT
    rows = reading.execute(
        select(Session.id, upcoming.c.day, point.id, point.places, Session.places)
        .outerjoin(upcoming, upcoming.c.session_id == Session.id)
        .outerjoin(point, and_(point.session_id == Session.id,
                               point.date_entree == upcoming.c.day))
        .where(Session.id.in_(session_ids))).all()
    # One pass on the (session_id, state) index: per session and entry point.
    per_session, per_point = {}, {}
    for session_id, point_id, n in reading.execute(
            select(Candidature.session_id, Candidature.entry_point_id, func.count())
            .where(Candidature.session_id.in_(session_ids),
                   Candidature.state.in_(COUNTED_STATES))
            .group_by(Candidature.session_id, Candidature.entry_point_id)):
        per_session[session_id] = per_session.get(session_id, 0) + n
        if point_id is not None:
            per_point[point_id] = n
    stats = {}
    for session_id, day, point_id, point_places, places in rows:
        if point_id is not None:
            stats[session_id] = (day, per_point.get(point_id, 0), point_places)
        else:
            stats[session_id] = (None, per_session.get(session_id, 0), places)
    return stats


def _facet_columns():
    return {"dispositif": SESSIONS.c.dispositif, "departement": SESSIONS.c.departement,
            "organisme": SESSIONS.c.organisme_id}


def _broad_counts(reading, base: list, filters: dict, criteria: Criteria,
                  today: dt.date) -> tuple[int, dict[str, list[Facet]]]:
    """Without keyword most open sessions match (≈ 120,000 at scale 25): the total is
    counted up to ``TOTAL_CAP`` + 1; each value of the dispositif and département facets
    up to ``CAP`` + 1 only (« plus de 1 000 »), each on its own index — unless a commune or
    organisme filter leaves few sessions to group; the organismes are grouped on their
    index, the 30 first joined to their names. Two statements, four with such a filter."""
    def others(name):
        return [condition for key, condition in filters.items() if key != name]

    def capped(name, value):
        column = _facet_columns()[name]
        hit = column.is_(None) if value is None else column == value
        return select(func.count()).select_from(
            select(SESSIONS.c.session_id).where(*base, *others(name), hit)
            .limit(CAP + 1).subquery()).scalar_subquery()

    def exact(name):  # the counts per value of a facet, grouped
        column = _facet_columns()[name]
        return select(column, func.count()).where(*base, *others(name)).group_by(column)

    # A commune or organisme filter leaves few sessions: the other facets group them.
    selective = {"organisme"} | ({"departement"} if criteria.communes else set())
    dispositifs = [None, *sorted(d.value for d in Dispositif)]
    departements = sorted(DEPARTEMENTS_NOUVELLE_AQUITAINE)
    grouped = {name: not selective.isdisjoint(set(filters) - {name})
               for name in ("dispositif", "departement")}
    total, *counts = reading.execute(select(
        select(func.count()).select_from(
            select(SESSIONS.c.session_id).where(*base, *filters.values())
            .limit(TOTAL_CAP + 1).subquery()).scalar_subquery(),
        *[capped("dispositif", value) for value in dispositifs if not grouped["dispositif"]],
        *[capped("departement", value) for value in departements
          if not grouped["departement"]])).one()
    values = {}
    for name, known in (("dispositif", dispositifs), ("departement", departements)):
        if grouped[name]:
            values[name] = [tuple(row) for row in reading.execute(exact(name))]
        else:
            values[name], counts = list(zip(known, counts[:len(known)])), counts[len(known):]
    if others("organisme") or criteria.exclude_started:
        per_organisme = (select(SESSIONS.c.organisme_id, func.count().label("n"))
                         .where(*base, *others("organisme")).group_by(SESSIONS.c.organisme_id)
                         .order_by(func.count().desc(), SESSIONS.c.organisme_id).limit(30)
                         .subquery())
    else:  # every searchable session, or the open ones: the counters, less the ended
        per_organisme = _organisme_counts(today, criteria.include_ended)
    organismes = reading.execute(
        select(per_organisme.c.organisme_id, per_organisme.c.n, Structure.raison_sociale)
        .outerjoin(Structure, Structure.id == per_organisme.c.organisme_id)
        .order_by(per_organisme.c.n.desc(), per_organisme.c.organisme_id)).all()
    return total, _facets(reading, values["dispositif"], values["departement"], organismes,
                          capped={name for name, exact in grouped.items() if not exact})


def _organisme_counts(today: dt.date, include_ended: bool):
    """The 30 organismes with the most searchable sessions (open ones only unless
    ``include_ended``), from the counters: ``(organisme_id, n)``."""
    counts = ORGANISME_COUNTS.c
    if include_ended:
        n = counts.sessions
        counted = select(counts.organisme_id, n.label("n"))
    else:
        ended = (select(SESSIONS.c.organisme_id, func.count().label("n"))
                 .where(SESSIONS.c.date_fin < today).group_by(SESSIONS.c.organisme_id)
                 .subquery())
        n = counts.sessions - func.coalesce(ended.c.n, 0)
        counted = select(counts.organisme_id, n.label("n")).outerjoin(
            ended, ended.c.organisme_id == counts.organisme_id)
    return (counted.where(n > 0).order_by(n.desc(), counts.organisme_id).limit(30)
            .subquery())


def _keyword_search(reading, base: list, filters: dict, page: int, per_page: int):
    """With a keyword the matching sessions are few (≈ 14,000 for « vente »): ONE statement
    matches them once (a CTE) and returns the total, each facet's counts (a facet ignores
    its own filter) and the page's ids. Exact counts."""
    flags = {name: case((condition, 1), else_=0).label(f"passes_{name}")
             for name, condition in filters.items()}
    matching = select(SESSIONS.c.session_id, SESSIONS.c.date_debut, SESSIONS.c.reference,
                      *_facet_columns().values(), *flags.values()).where(*base).cte("matching")

    def passing(*names):
        return [matching.c[f"passes_{name}"] == 1 for name in names if name in filters]

    def part(kind, value, *where, grouped=True, shown=lambda value: value):
        # ``shown``: the value as the union's text column, computed per group, not per row
        return select(literal_column(f"'{kind}'").label("kind"), shown(value).label("value"),
                      func.count().label("n")).select_from(matching).where(*where).group_by(
            *([value] if grouped else []))

    def page_of(number):
        chosen = (select(matching.c.session_id, matching.c.date_debut, matching.c.reference)
                  .where(*passing(*filters)).order_by(matching.c.date_debut,
                                                      matching.c.reference)
                  .offset((number - 1) * per_page).limit(per_page).subquery())
        return select(literal_column("'page'").label("kind"),
                      func.cast(chosen.c.session_id, String).label("value"),
                      func.row_number().over(order_by=(chosen.c.date_debut, chosen.c.reference))
                      .label("n"))

    def others(name):
        return passing(*[other for other in filters if other != name])

    columns = {"dispositif": matching.c.dispositif, "departement": matching.c.departement,
               "organisme": matching.c.organisme_id}
    statement = union_all(
        part("total", literal_column("NULL"), *passing(*filters), grouped=False),
        part("dispositif", columns["dispositif"], *others("dispositif")),
        part("departement", columns["departement"], *others("departement")),
        part("organisme", columns["organisme"], *others("organisme"),
             shown=lambda value: func.cast(value, String)),
        page_of(page).subquery().select())
    total, counts, ids = 0, {"dispositif": [], "departement": [], "organisme": []}, []
    for kind, value, n in reading.execute(statement):
        if kind == "total":
            total = n
        elif kind == "page":
            ids.append((n, int(value)))
        else:
            counts[kind].append((value, n))
    last = max(1, -(-total // per_page))
    if page > last:  # beyond the last page: show the last one
        page = last
        ids = [(n, int(value)) for _kind, value, n in reading.execute(page_of(page))]
    ids = [ident for _position, ident in sorted(ids)]
    organismes = sorted(((int(o), n) for o, n in counts["organisme"]),
                        key=lambda item: (-item[1], item[0]))[:30]
    names = dict(reading.execute(select(Structure.id, Structure.raison_sociale).where(
        Structure.id.in_([o for o, _ in organismes]))).all()) if organismes else {}
    return total, _facets(reading, counts["dispositif"], counts["departement"],
                          [(o, n, names.get(o)) for o, n in organismes]), page, ids


def _facets(reading, dispositifs, departements, organismes,
            capped: set[str] = frozenset()) -> dict[str, list[Facet]]:
    labels = Dispositif.labels()
    # The order of the former ORDER BY: NULL first on SQLite, last on PostgreSQL.
    null_last = reading.get_bind().dialect.name == "postgresql"
    return {
        "dispositif": [Facet(code or "", labels.get(code, code or "Non renseigné"), n,
                             "dispositif" in capped)
                       for code, n in sorted(dispositifs, key=lambda item: (
                           (item[0] is None) == null_last, item[0] or "")) if n],
        "departement": [Facet(code, code, n, "departement" in capped) for code, n in sorted(
            (code, n) for code, n in departements if code is not None and n)],
        "organisme": [Facet(str(ident), name or "?", n) for ident, n, name in organismes],
    }


def display_intitule(formation: Formation) -> str:
    """What search shows: the validated text while a change waits for moderation."""
    if formation.state == FormationState.MODIFIEE and formation.validated_snapshot:
        return formation.validated_snapshot.get("intitule") or formation.intitule
    return formation.intitule


__all__ = ["Criteria", "Result", "Row", "SearchError", "search_sessions", "install",
           "uninstall", "install_terms", "uninstall_terms", "install_sessions", "uninstall_sessions", "reader",
           "display_intitule"]
