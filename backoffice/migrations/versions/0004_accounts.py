"""failed logins per account and per address (brute-force delay)

Revision ID: 0004_accounts
Revises: 0003_search
"""
from alembic import op
import sqlalchemy as sa


revision = "0004_accounts"
down_revision = "0003_search"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=254), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=True),
        sa.Column("blocked_until", sa.DateTime(), nullable=True),
        sa.CheckConstraint("scope IN ('compte', 'adresse')",
                           name=op.f("ck_login_throttle_scope_connu")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttle")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_login_throttle_scope_key")),
    )


def downgrade():
    op.drop_table("login_throttle")
