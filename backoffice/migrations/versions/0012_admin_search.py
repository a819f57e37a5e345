"""admin search: word indexes of candidates' names, formations' titles and messages'
subjects (SQLite FTS5 tables and triggers, PostgreSQL pg_trgm expression indexes) and the
indexes of the exact searches (candidate e-mail and regional identifier, recipient of an
outbound message)

The word indexes' DDL is ``backoffice.admin.text_index.install`` (also run by
``db.create_all()``).

Revision ID: 0012_admin_search
Revises: 0010_task_queue
"""
from alembic import op

from backoffice.admin import text_index

revision = "0012_admin_search"
down_revision = "0010_task_queue"
branch_labels = None
depends_on = None

INDEXES = (("ix_candidate_email", "candidate", ["email"]),
           ("ix_candidate_identifiant_regional", "candidate", ["identifiant_regional"]),
           ("ix_outbound_message_recipient", "outbound_message", ["recipient"]))


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    text_index.install(op.get_bind())


def downgrade():
    text_index.uninstall(op.get_bind())
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
