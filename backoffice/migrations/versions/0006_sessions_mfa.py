"""server-side login sessions (user_session) and the second factor of staff (TOTP secret,
recovery codes); drops user_account.session_generation, which the sessions replace

Revision ID: 0006_sessions_mfa
Revises: 0005_sealed_links
"""
from alembic import op
import sqlalchemy as sa


revision = "0006_sessions_mfa"
down_revision = "0005_sealed_links"
branch_labels = None
depends_on = None

END_REASONS = ("deconnexion", "mot_de_passe", "autres_sessions", "desactivation",
               "inactivite", "duree_maximale", "echec_mfa")


def upgrade():
    op.create_table(
        "user_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=30), nullable=True),
        sa.Column("client_address", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("mfa_passed_at", sa.DateTime(), nullable=True),
        sa.Column("mfa_failures", sa.Integer(), nullable=False),
        sa.CheckConstraint("end_reason IS NULL OR end_reason IN ({})".format(
            ", ".join(f"'{r}'" for r in END_REASONS)),
            name=op.f("ck_user_session_end_reason_valide")),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE",
                                name=op.f("fk_user_session_user_id_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_session")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_user_session_key_hash")),
    )
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.create_index("ix_user_session_user_id_ended_at", ["user_id", "ended_at"],
                              unique=False)
    op.create_table(
        "mfa_recovery_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE",
                                name=op.f("fk_mfa_recovery_code_user_id_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_recovery_code")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_mfa_recovery_code_code_hash")),
    )
    with op.batch_alter_table("mfa_recovery_code", schema=None) as batch_op:
        batch_op.create_index("ix_mfa_recovery_code_user_id", ["user_id"], unique=False)
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("mfa_enabled_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("totp_last_counter", sa.Integer(), nullable=True))
        batch_op.drop_column("session_generation")


def downgrade():
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_generation", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.drop_column("totp_last_counter")
        batch_op.drop_column("mfa_enabled_at")
        batch_op.drop_column("totp_secret_encrypted")
    with op.batch_alter_table("mfa_recovery_code", schema=None) as batch_op:
        batch_op.drop_index("ix_mfa_recovery_code_user_id")
    op.drop_table("mfa_recovery_code")
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.drop_index("ix_user_session_user_id_ended_at")
    op.drop_table("user_session")
