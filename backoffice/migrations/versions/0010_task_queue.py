"""task queue on job_run: « En attente » and « Interrompue », heartbeat, runner, payload

Revision ID: 0010_task_queue
Revises: 0009_message_lease
"""
from alembic import op
import sqlalchemy as sa


revision = "0010_task_queue"
down_revision = "0009_message_lease"
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('en_cours', 'succes', 'echec')"
NEW_STATUSES = "status IN ('en_attente', 'en_cours', 'succes', 'echec', 'interrompue')"


def upgrade():
    with op.batch_alter_table("job_run") as batch_op:
        batch_op.drop_constraint(op.f("ck_job_run_status_valide"), type_="check")
        batch_op.create_check_constraint(op.f("ck_job_run_status_valide"), NEW_STATUSES)
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("runner", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("requested_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.LargeBinary(), nullable=True))
        batch_op.create_foreign_key("fk_job_run_requested_by_id_user_account", "user_account",
                                    ["requested_by_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index("ix_job_run_status", ["status"])


def downgrade():
    op.execute("UPDATE job_run SET status = 'echec' WHERE status IN ('en_attente', 'interrompue')")
    with op.batch_alter_table("job_run") as batch_op:
        batch_op.drop_index("ix_job_run_status")
        batch_op.drop_constraint("fk_job_run_requested_by_id_user_account", type_="foreignkey")
        batch_op.drop_column("payload")
        batch_op.drop_column("requested_by_id")
        batch_op.drop_column("attempts")
        batch_op.drop_column("runner")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_constraint(op.f("ck_job_run_status_valide"), type_="check")
        batch_op.create_check_constraint(op.f("ck_job_run_status_valide"), OLD_STATUSES)
