"""admin search: word indexes of candidates' names, formations' titles and messages'
subjects (SQLite FTS5 tables and triggers, PostgreSQL pg_trgm expression indexes) and the
indexes of the exact searches (candidate e-mail and regional identifier, recipient of an
outbound message) and of the sorted keyset pages (candidate name, candidature date, with
the id)

The word indexes' DDL is ``backoffice.admin.text_index.install`` (also run by
``db.create_all()``).

Revision ID: 0012_admin_search
Revises: 0011_search_sessions
"""
from alembic import op

from backoffice.admin import text_index

revision = "0012_admin_search"
down_revision = "0011_search_sessions"
branch_labels = None
depends_on = None

INDEXES = (("ix_candidate_email", "candidate", ["email"]),
           ("ix_candidate_identifiant_regional", "candidate", ["identifiant_regional"]),
           ("ix_candidate_nom", "candidate", ["nom", "id"]),
           ("ix_outbound_message_recipient", "outbound_message", ["recipient"]))


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    # Keyset pages sorted by date: (date, id) is the list's order.
    op.drop_index("ix_candidature_submitted_at", table_name="candidature")
    op.create_index("ix_candidature_submitted_at", "candidature", ["submitted_at", "id"])
    text_index.install(op.get_bind())


def downgrade():
    text_index.uninstall(op.get_bind())
    op.drop_index("ix_candidature_submitted_at", table_name="candidature")
    op.create_index("ix_candidature_submitted_at", "candidature", ["submitted_at"])
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
