"""Searchable sessions of the catalogue (issue 13): the table ``formation_search_session``
(one row per active session of a validated or modified formation, with the columns the
search's filters, facets and sort read), its indexes and the triggers on session,
formation and commune that keep it in step; filled from the existing rows.

The DDL is ``backoffice.search.install_sessions`` (also run by ``db.create_all()``).

Revision ID: 0011_search_sessions
Revises: 0010_task_queue
"""
from alembic import op

from backoffice import search

# revision identifiers, used by Alembic.
revision = "0011_search_sessions"
down_revision = "0010_task_queue"
branch_labels = None
depends_on = None


def upgrade():
    search.install_sessions(op.get_bind())


def downgrade():
    search.uninstall_sessions(op.get_bind())
