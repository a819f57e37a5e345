"""Full-text index of the catalogue (search of the offer): SQLite FTS5 table and
triggers, or PostgreSQL unaccent + tsvector table with a GIN index and a trigger.

The DDL is ``backoffice.search.install`` (also run by ``db.create_all()``).

Revision ID: 0003_search
Revises: 80878880b049
"""
from alembic import op

from backoffice import search

# revision identifiers, used by Alembic.
revision = "0003_search"
down_revision = "80878880b049"
branch_labels = None
depends_on = None


def upgrade():
    search.install(op.get_bind())


def downgrade():
    search.uninstall(op.get_bind())
