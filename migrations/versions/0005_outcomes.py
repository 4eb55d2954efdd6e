"""outcomes: urgent replies and randomized holdouts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 21:00:00

``inbound_message.urgent_phrase`` records the crisis or safety phrase that made a reply
urgent; ``campaign.holdout_pct`` and ``campaign.holdout_seed`` record a campaign's random
holdout (its held-out students are ``message`` rows in status ``held_out``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("urgent_phrase", sa.String(length=200), nullable=True))
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holdout_pct", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("holdout_seed", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("holdout_seed")
        batch_op.drop_column("holdout_pct")
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.drop_column("urgent_phrase")
