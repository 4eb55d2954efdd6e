"""mailbox: replies by email, students' email replies in the thread, staff away messages

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 20:30:00

``message`` gains an index on (person_id, kind) for a student's thread; ``mail_receipt`` is
the ledger of the reply mailbox (one row per mail, unique by
Message-ID, so each mail is acted on once); ``inbound_message`` gains ``channel`` (``sms``
or ``email``) and ``from_email`` for a student's answer by email; ``staff_away`` holds
absences and their away messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_person", ["person_id", "kind"], unique=False)
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "channel",
                sa.String(length=8),
                nullable=False,
                server_default="sms",
            )
        )
        batch_op.add_column(
            sa.Column("from_email", sa.String(length=320), nullable=True)
        )
    op.create_table(
        "mail_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mail_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("from_addr", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("staff_person_id", sa.Integer(), nullable=True),
        sa.Column("student_person_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("inbound_id", sa.Integer(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("handled_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["staff_person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["student_person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["inbound_id"], ["inbound_message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mail_key", name="uq_mail_receipt_key"),
    )
    with op.batch_alter_table("mail_receipt", schema=None) as batch_op:
        batch_op.create_index("ix_mail_receipt_status", ["status"], unique=False)
    op.create_table(
        "staff_away",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_person_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["staff_person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("staff_away", schema=None) as batch_op:
        batch_op.create_index("ix_staff_away_staff", ["staff_person_id", "ends_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_away", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_away_staff")
    op.drop_table("staff_away")
    with op.batch_alter_table("mail_receipt", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_receipt_status")
    op.drop_table("mail_receipt")
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.drop_column("from_email")
        batch_op.drop_column("channel")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_person")
