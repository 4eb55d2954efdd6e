"""one outbox: fencing tokens, loose-message keys, shared pacing slots

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 19:00:00

Every outbound message (notifications and alerts included) is a row of ``message``;
rows outside campaigns are unique by ``outbox_key``. ``claim_token`` and ``marked_at``
fence the ``sending`` mark; ``send_chunk.claim_token`` fences chunk claims; ``pace_slot``
paces sends across worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pace_slot",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outbox_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("inbound_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claim_token", sa.String(length=240), nullable=True))
        batch_op.add_column(
            sa.Column("marked_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint("uq_message_outbox_key", ["outbox_key"])
        batch_op.create_index("ix_message_loose", ["kind", "status"], unique=False)
    with op.batch_alter_table("send_chunk", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=240), nullable=True))
        batch_op.add_column(
            sa.Column("failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("conversation", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # The defaults above only fill existing rows; the models set them on insert.
    with op.batch_alter_table("send_chunk", schema=None) as batch_op:
        batch_op.alter_column("failures", server_default=None)
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.alter_column("conversation", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("conversation")
    with op.batch_alter_table("send_chunk", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("failures")
        batch_op.drop_column("claim_token")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_loose")
        batch_op.drop_constraint("uq_message_outbox_key", type_="unique")
        batch_op.drop_column("marked_at")
        batch_op.drop_column("claim_token")
        batch_op.drop_column("inbound_id")
        batch_op.drop_column("outbox_key")
    op.drop_table("pace_slot")
