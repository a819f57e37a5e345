"""rate limits: one counter table (logins, e-mails of the public forms) replacing
login_throttle

Revision ID: 0007_rate_limits
Revises: 0006_sessions_mfa
"""
from alembic import op
import sqlalchemy as sa


revision = "0007_rate_limits"
down_revision = "0006_sessions_mfa"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rate_limit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=254), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_rate_limit_scope_key")),
    )
    op.create_index(op.f("ix_rate_limit_window_start"), "rate_limit", ["window_start"],
                    unique=False)
    # Failure counts of the old table are not carried over: they decay within minutes.
    op.drop_table("login_throttle")


def downgrade():
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
    op.drop_index(op.f("ix_rate_limit_window_start"), table_name="rate_limit")
    op.drop_table("rate_limit")
