"""The word indexes behind the admin search: candidates' names, formations' titles, the
subjects of outbound messages.

A moderator types the beginning of words (« Dupont », « léger », « d'alm », « cuisi »):
every word typed must begin a word of the indexed text, accents, case, hyphens and
apostrophes ignored. For names, the name with its separators removed counts as a word too
(« dupontleger », « dalmeida »: the ``nom_normalise`` and ``prenom_normalise`` columns).
The same words are indexed on both databases — runs of ``[a-z0-9]`` after folding, as
``backoffice.text.fold`` gives:

* SQLite: one FTS5 table ``admin_search_<table>`` per indexed table (``unicode61
  remove_diacritics 2``, prefix indexes of 1 to 3 letters), rowid = the row's id, kept in
  step by triggers on every insert, update and delete (ORM, imports, raw SQL alike);
* PostgreSQL: a ``pg_trgm`` GIN index on an IMMUTABLE expression of the columns (the
  folded words between spaces), which the database keeps in step by itself on every
  write; a word prefix is ``LIKE '% word%'`` on that expression, served by the index.

Only these texts are indexed: never the NIR, a token or any secret. ``install(connection)``
creates the indexes (run by ``db.create_all()`` through an ``after_create`` listener, and by
migration ``0012_admin_search``); ``uninstall`` drops them.
"""
from __future__ import annotations

from sqlalchemy import and_, event, func, literal_column, select, text

from backoffice.extensions import db
from backoffice.text import fold

PREFIX = "admin_search"
# table → the columns whose words are indexed
INDEXED = {
    "candidate": ("nom", "prenom", "nom_normalise", "prenom_normalise"),
    "formation": ("intitule",),
    "outbound_message": ("subject",),
}
# Names have no digit: a word with a digit is a reference or an identifier, not a name.
NAMES = {"candidate"}
PG_FUNCTION = f"{PREFIX}_words"


def _sqlite_document(prefix: str, columns) -> str:
    document = " || ' ' || ".join(f"coalesce({prefix}{name}, '')" for name in columns)
    # unicode61 keeps "œ" as a letter; fold() and unaccent (PostgreSQL) give "oe".
    for ligature, letters in (("œ", "oe"), ("Œ", "oe"), ("æ", "ae"), ("Æ", "ae")):
        document = f"replace({document}, '{ligature}', '{letters}')"
    return document


def _sqlite_install(table: str, columns) -> list[str]:
    index, new = f"{PREFIX}_{table}", _sqlite_document("new.", columns)
    return [
        f"CREATE VIRTUAL TABLE {index} USING fts5(document, "
        "tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3')",
        f"CREATE TRIGGER {index}_ai AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {index}(rowid, document) VALUES (new.id, {new}); END",
        f"CREATE TRIGGER {index}_au AFTER UPDATE OF {', '.join(columns)} ON {table} BEGIN "
        f"DELETE FROM {index} WHERE rowid = old.id; "
        f"INSERT INTO {index}(rowid, document) VALUES (new.id, {new}); END",
        f"CREATE TRIGGER {index}_ad AFTER DELETE ON {table} BEGIN "
        f"DELETE FROM {index} WHERE rowid = old.id; END",
        f"INSERT INTO {index}(rowid, document) "
        f"SELECT id, {_sqlite_document(f'{table}.', columns)} FROM {table}",
    ]


def _sqlite_uninstall(table: str) -> list[str]:
    index = f"{PREFIX}_{table}"
    return [*(f"DROP TRIGGER IF EXISTS {index}_{suffix}" for suffix in ("ai", "au", "ad")),
            f"DROP TABLE IF EXISTS {index}"]


def _pg_install(table: str, columns) -> list[str]:
    return [f"CREATE INDEX ix_{PREFIX}_{table} ON {table} USING gin "
            f"({PG_FUNCTION}({', '.join(columns)}) gin_trgm_ops)"]


PG_FUNCTION_DDL = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # unaccent() is STABLE (it reads a dictionary); an index needs an IMMUTABLE function.
    f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}(VARIADIC text[]) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE "
    "AS $$ SELECT ' ' || trim(regexp_replace(lower(unaccent('unaccent'::regdictionary, "
    "array_to_string($1, ' '))), '[^a-z0-9]+', ' ', 'g')) || ' ' $$",
]


def install(connection) -> None:
    """Create the word indexes (idempotent: drops them first)."""
    uninstall(connection)
    postgresql = connection.dialect.name == "postgresql"
    statements = list(PG_FUNCTION_DDL) if postgresql else []
    for table, columns in INDEXED.items():
        statements += _pg_install(table, columns) if postgresql \
            else _sqlite_install(table, columns)
    if postgresql:  # the planner's statistics of the indexed expressions
        statements.append(f"ANALYZE {', '.join(INDEXED)}")
    for statement in statements:
        connection.exec_driver_sql(statement)


def uninstall(connection) -> None:
    if connection.dialect.name == "postgresql":
        statements = [f"DROP INDEX IF EXISTS ix_{PREFIX}_{table}" for table in INDEXED]
        statements.append(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}(VARIADIC text[])")
    else:
        statements = [s for table in INDEXED for s in _sqlite_uninstall(table)]
    for statement in statements:
        connection.exec_driver_sql(statement)


def _concerns_indexed_tables(kw) -> bool:
    return any(getattr(table, "name", None) in INDEXED for table in kw.get("tables") or ())


def _after_create(target, connection, **kw) -> None:
    if _concerns_indexed_tables(kw):
        install(connection)


def _before_drop(target, connection, **kw) -> None:
    if _concerns_indexed_tables(kw):
        uninstall(connection)


event.listen(db.metadata, "after_create", _after_create)
event.listen(db.metadata, "before_drop", _before_drop)


def words(search: str) -> list[str]:
    """The words of a search as the indexes hold them: "Dupont-Léger " → dupont, leger."""
    return fold(search).split()


def rows_matching(model, search: str):
    """``SELECT id`` of the rows of ``model`` (an indexed table) whose indexed text has a
    word beginning with each word of ``search``; None when the search has no word."""
    terms = words(search)
    table = model.__table__.name
    if not terms:
        return None
    if db.session.get_bind().dialect.name == "postgresql":
        document = getattr(func, PG_FUNCTION)(*(model.__table__.c[name]
                                                for name in INDEXED[table]))
        return select(model.id).where(and_(*(document.like(f"% {term}%") for term in terms)))
    index = f"{PREFIX}_{table}"
    # FTS5: each word a quoted prefix query ("dup"*), all of them required.
    query = " ".join(f'"{term}"*' for term in terms)
    return select(literal_column("rowid")).select_from(text(index)).where(
        text(f"{index} MATCH :words").bindparams(words=query))
