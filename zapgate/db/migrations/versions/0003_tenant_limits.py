"""Per-tenant limits: overrides of the ZAPGATE_* defaults (NULL keeps the default).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_limits",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("rate_per_key", sa.Float, nullable=True),
        sa.Column("burst", sa.Integer, nullable=True),
        sa.Column("concurrent_per_key", sa.Integer, nullable=True),
        sa.Column("sessions", sa.Integer, nullable=True),
        sa.Column("webhooks", sa.Integer, nullable=True),
        sa.Column("queued_per_session", sa.Integer, nullable=True),
        sa.Column("streams_per_key", sa.Integer, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_limits")
