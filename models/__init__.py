"""SQLModel tables and keyword-only repository functions; the session is owned by the caller.

Importing this package registers every table on ``SQLModel.metadata`` (Alembic and the tests
rely on that).
"""

from models.away import StaffAway
from models.config import SmsConfigRow
from models.consent import Consent, ConsentEvent
from models.mailbox import MailReceipt
from models.messaging import (
    Campaign,
    InboundMessage,
    Message,
    PaceSlot,
    PollCursor,
    QualityRun,
    QuotaLedger,
    SendChunk,
    SenderNumber,
)
from models.people import Person, PhoneNumber
from models.roles import DynamicRole, RoleGrant
from models.sync import QuarantinedRow, SyncRun
from models.webhooks import WebhookDelivery

__all__ = [
    "Campaign",
    "Consent",
    "ConsentEvent",
    "DynamicRole",
    "InboundMessage",
    "MailReceipt",
    "Message",
    "PaceSlot",
    "Person",
    "PhoneNumber",
    "PollCursor",
    "QualityRun",
    "QuarantinedRow",
    "QuotaLedger",
    "RoleGrant",
    "SendChunk",
    "SenderNumber",
    "SmsConfigRow",
    "StaffAway",
    "SyncRun",
    "WebhookDelivery",
]
