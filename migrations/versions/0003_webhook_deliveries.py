"""webhook deliveries: first sightings of signed Twilio webhook requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00

``webhook_delivery`` remembers when each signed webhook request (a hash of its signature,
URL and parameters) first reached a receiver: a retry inside the replay window is accepted,
the same request after it is refused as a replay. Pruned by first sight.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_delivery",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_delivery_first_seen", ["first_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_delivery_first_seen")
    op.drop_table("webhook_delivery")
