"""Search at scale (issue 13), second step:

* PostgreSQL: the words of the catalogue's full-text documents in a B-tree,
  ``formation_search_term(term, formation_id)``, kept in step with ``formation_search`` by
  a trigger, so that a keyword's formations are read from an index alone; the document is
  rewritten only when it changes. Nothing on SQLite (FTS5 gives the ids itself).
* Both: ``formation_search_organisme``, the searchable sessions per organisme, kept by
  triggers on ``formation_search_session`` (rebuilt with it).

The DDL is ``backoffice.search.install`` / ``install_terms`` / ``install_sessions`` (also
run by ``db.create_all()``).

Revision ID: 0013_search_terms
Revises: 0012_admin_search
"""
from alembic import op

from backoffice import search

# revision identifiers, used by Alembic.
revision = "0013_search_terms"
down_revision = "0012_admin_search"
branch_labels = None
depends_on = None


def upgrade():
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        for statement in search.POSTGRESQL_INSTALL:  # the trigger function, as now written
            if statement.startswith("CREATE OR REPLACE FUNCTION formation_search_refresh"):
                connection.exec_driver_sql(statement)
    search.install_terms(connection)
    search.install_sessions(connection)  # with the counters per organisme


def downgrade():
    connection = op.get_bind()
    search.uninstall_terms(connection)
    search.uninstall_sessions(connection, counts_only=True)
