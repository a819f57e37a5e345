"""lease of the sender delivering an outbound message (exactly-once delivery)

Revision ID: 0009_message_lease
Revises: 0008_personal_data_access
"""
from alembic import op
import sqlalchemy as sa


revision = "0009_message_lease"
down_revision = "0008_personal_data_access"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbound_message") as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("outbound_message") as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claim_token")
