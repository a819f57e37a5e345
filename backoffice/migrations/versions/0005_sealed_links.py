"""secret links of queued e-mails kept encrypted apart from the bodies staff can read

Revision ID: 0005_sealed_links
Revises: 0004_accounts
"""
from alembic import op
import sqlalchemy as sa


revision = "0005_sealed_links"
down_revision = "0004_accounts"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbound_message") as batch_op:
        batch_op.add_column(sa.Column("sealed_links", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("outbound_message") as batch_op:
        batch_op.drop_column("sealed_links")
