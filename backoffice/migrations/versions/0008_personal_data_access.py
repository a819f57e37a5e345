"""log of staff reads of candidates' personal data (RGPD)

Revision ID: 0008_personal_data_access
Revises: 0007_rate_limits
"""
from alembic import op
import sqlalchemy as sa


revision = "0008_personal_data_access"
down_revision = "0007_rate_limits"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "personal_data_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=40), nullable=True),
        sa.Column("candidate_id", sa.Integer(), nullable=True),
        sa.Column("what", sa.String(length=100), nullable=False),
        sa.Column("location", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["user_account.id"],
                                name=op.f("fk_personal_data_access_actor_id_user_account"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_data_access")),
    )
    with op.batch_alter_table("personal_data_access", schema=None) as batch_op:
        batch_op.create_index("ix_personal_data_access_actor", ["actor_id", "at"],
                              unique=False)
        batch_op.create_index("ix_personal_data_access_at", ["at"], unique=False)
        batch_op.create_index("ix_personal_data_access_candidate", ["candidate_id", "at"],
                              unique=False)


def downgrade():
    with op.batch_alter_table("personal_data_access", schema=None) as batch_op:
        batch_op.drop_index("ix_personal_data_access_candidate")
        batch_op.drop_index("ix_personal_data_access_at")
        batch_op.drop_index("ix_personal_data_access_actor")
    op.drop_table("personal_data_access")
