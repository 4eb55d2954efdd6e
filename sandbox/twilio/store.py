"""The emulator's state: messages, bought numbers, Messaging Service pools and opt-outs.

Everything lives in memory, indexed for the queries the API serves (by SID, by To, by
From). With a state file the store also writes every change through to SQLite (WAL mode)
and reloads it at start-up, so messages and numbers survive a restart. Counters and knobs
are not state: they start afresh with every process.

A message's status is not stored: it is a function of time (see ``wire.message_view``), so
the store keeps only what decides it, fixed when the message is created: when it leaves
``queued``, when it reaches its final status, and which status that is. Its
``ValidityPeriod`` is kept too (Twilio's message resource does not show it; the sandbox
routes do), and, for inbound messages, when the message starts to show in the list
(``listable_at``: Twilio's list lags behind its messages).

The list's order depends on time (a message moves when it gets its send date), so the store
keeps what a cache of that order needs: a ``version`` that changes with every write, and the
instants still to come when a message gets its send date (:meth:`Store.next_send_after`).
"""

from __future__ import annotations

import heapq
import math
import sqlite3
from dataclasses import astuple, dataclass, fields
from pathlib import Path

#: Twilio's ValidityPeriod when a create sets none (its maximum).
DEFAULT_VALIDITY_S = 36_000


@dataclass(slots=True)
class StoredMessage:
    """One message, inbound or outbound, as the emulator keeps it."""

    seq: int
    sid: str
    account_sid: str
    direction: str  # inbound | outbound-api | outbound-reply
    to: str
    from_: str | None
    body: str
    messaging_service_sid: str | None
    num_segments: int
    created_at: float  # epoch seconds
    # When it leaves 'queued': queue wait + one status delay, then 'sent' (its date_sent);
    # for a message that never leaves Twilio, when it turns 'failed' (no date_sent); for an
    # inbound one, when Twilio calls the incoming webhook: 'receiving' -> 'received'.
    sent_at: float
    done_at: float  # when it reaches its final status
    outcome: str  # delivered | undelivered | failed | received
    error_code: int | None
    # Last, so that state files written before it existed load with the default (see _SCHEMA).
    validity_s: int = DEFAULT_VALIDITY_S  # ValidityPeriod: the longest it may stay queued
    # When the Messages list starts to return it; None: from its creation.
    listable_at: float | None = None

    @property
    def gets_sent(self) -> bool:
        """True if it has a ``date_sent`` from ``sent_at`` on (all but failed messages)."""
        return self.outcome != "failed"


@dataclass(slots=True)
class StoredNumber:
    """A phone number an account bought (an IncomingPhoneNumber)."""

    seq: int
    sid: str
    account_sid: str
    phone_number: str
    friendly_name: str
    created_at: float


@dataclass(slots=True)
class ServiceNumber:
    """A bought number in a Messaging Service's sender pool."""

    service_sid: str
    number_sid: str
    account_sid: str
    created_at: float


def _columns(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY, sid TEXT UNIQUE NOT NULL, account_sid TEXT NOT NULL,
    direction TEXT NOT NULL, "to" TEXT NOT NULL, from_ TEXT, body TEXT NOT NULL,
    messaging_service_sid TEXT, num_segments INTEGER NOT NULL, created_at REAL NOT NULL,
    sent_at REAL NOT NULL, done_at REAL NOT NULL, outcome TEXT NOT NULL,
    error_code INTEGER, validity_s INTEGER NOT NULL DEFAULT 36000, listable_at REAL);
CREATE TABLE IF NOT EXISTS numbers (
    seq INTEGER PRIMARY KEY, sid TEXT UNIQUE NOT NULL, account_sid TEXT NOT NULL,
    phone_number TEXT UNIQUE NOT NULL, friendly_name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS service_numbers (
    service_sid TEXT NOT NULL, number_sid TEXT NOT NULL, account_sid TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (service_sid, number_sid));
CREATE TABLE IF NOT EXISTS optouts (
    account_sid TEXT NOT NULL, recipient TEXT NOT NULL, sender TEXT NOT NULL,
    PRIMARY KEY (account_sid, recipient, sender));
"""


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a state file written by an older emulator up to date (columns are only added)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    if "validity_s" not in have:
        db.execute(
            "ALTER TABLE messages ADD COLUMN validity_s INTEGER NOT NULL "
            f"DEFAULT {DEFAULT_VALIDITY_S}"
        )
    if "listable_at" not in have:
        db.execute("ALTER TABLE messages ADD COLUMN listable_at REAL")


class Store:
    """In-memory state with optional write-through to a SQLite file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        #: Changes with every write: caches of the list's order are keyed by it.
        self.version = 0
        self._clear_memory()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The server thread uses the connection; it is created here, hence no thread check.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            _add_missing_columns(self._db)
            self._load(self._db)

    def _clear_memory(self) -> None:
        self.messages: list[StoredMessage] = []
        self.by_sid: dict[str, StoredMessage] = {}
        self.by_to: dict[str, list[StoredMessage]] = {}
        self.by_from: dict[str, list[StoredMessage]] = {}
        self.numbers: list[StoredNumber] = []
        self.number_by_phone: dict[str, StoredNumber] = {}
        self.number_by_sid: dict[str, StoredNumber] = {}
        self.pools: dict[str, list[ServiceNumber]] = {}
        self.service_of_number: dict[str, str] = {}
        self.optouts: set[tuple[str, str, str]] = set()
        #: A heap of the instants messages get their date_sent (failed ones never do), after
        #: ``_checked_at``: the ones before it are past and dropped.
        self._pending_sends: list[float] = []
        self._checked_at = -math.inf
        self._seq = 0
        self.version += 1

    def _load(self, db: sqlite3.Connection) -> None:
        cols = ", ".join(f'"{c}"' if c == "to" else c for c in _columns(StoredMessage))
        for row in db.execute(f"SELECT {cols} FROM messages ORDER BY seq"):  # noqa: S608
            self._index_message(StoredMessage(*row))
        number_cols = ", ".join(_columns(StoredNumber))
        for row in db.execute(f"SELECT {number_cols} FROM numbers ORDER BY seq"):  # noqa: S608
            self._index_number(StoredNumber(*row))
        for row in db.execute(
            "SELECT service_sid, number_sid, account_sid, created_at FROM service_numbers "
            "ORDER BY created_at"
        ):
            self._index_service_number(ServiceNumber(*row))
        for account_sid, recipient, sender in db.execute(
            "SELECT account_sid, recipient, sender FROM optouts"
        ):
            self.optouts.add((account_sid, recipient, sender))

    # --- writes ---------------------------------------------------------------------

    def next_seq(self) -> int:
        """Reserve the next sequence number (shared by messages and numbers)."""
        self._seq += 1
        return self._seq

    def add_message(self, message: StoredMessage) -> None:
        """Keep a new message (its ``seq`` must come from :meth:`next_seq`)."""
        self._index_message(message)
        if self._db is not None:
            marks = ", ".join("?" * len(fields(StoredMessage)))
            self._db.execute(f"INSERT INTO messages VALUES ({marks})", astuple(message))  # noqa: S608

    def add_number(self, number: StoredNumber) -> None:
        """Keep a newly bought number."""
        self._index_number(number)
        if self._db is not None:
            marks = ", ".join("?" * len(fields(StoredNumber)))
            self._db.execute(f"INSERT INTO numbers VALUES ({marks})", astuple(number))  # noqa: S608

    def add_service_number(self, entry: ServiceNumber) -> None:
        """Put a bought number in a Messaging Service's sender pool."""
        self._index_service_number(entry)
        if self._db is not None:
            self._db.execute("INSERT INTO service_numbers VALUES (?, ?, ?, ?)", astuple(entry))

    def set_opt_out(self, account_sid: str, recipient: str, sender: str, *, out: bool) -> None:
        """Record that ``recipient`` opted out of (or back in to) texts from ``sender``."""
        key = (account_sid, recipient, sender)
        if out:
            self.optouts.add(key)
        else:
            self.optouts.discard(key)
        if self._db is not None:
            if out:
                self._db.execute("INSERT OR IGNORE INTO optouts VALUES (?, ?, ?)", key)
            else:
                self._db.execute(
                    "DELETE FROM optouts WHERE account_sid=? AND recipient=? AND sender=?", key
                )

    def reset(self) -> None:
        """Forget everything (and empty the state file)."""
        self._clear_memory()
        if self._db is not None:
            for table in ("messages", "numbers", "service_numbers", "optouts"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608

    def close(self) -> None:
        """Close the state file, if any."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # --- reads ----------------------------------------------------------------------

    def pool(self, service_sid: str) -> list[StoredNumber]:
        """The numbers in a Messaging Service's sender pool, oldest first."""
        return [
            self.number_by_sid[entry.number_sid]
            for entry in self.pools.get(service_sid, [])
            if entry.number_sid in self.number_by_sid
        ]

    def is_opted_out(self, account_sid: str, recipient: str, senders: list[str]) -> bool:
        """True if ``recipient`` opted out of any of ``senders``."""
        return any((account_sid, recipient, s) in self.optouts for s in senders)

    def next_send_after(self, now: float) -> float:
        """The first instant after ``now`` when a message gets its ``date_sent`` (inf: none)."""
        pending = self._pending_sends
        if now < self._checked_at:  # the clock went back (a test's clock): count again
            pending[:] = [m.sent_at for m in self.messages if m.gets_sent and m.sent_at > now]
            heapq.heapify(pending)
        while pending and pending[0] <= now:
            heapq.heappop(pending)
        self._checked_at = now
        return pending[0] if pending else math.inf

    # --- indexes --------------------------------------------------------------------

    def _index_message(self, message: StoredMessage) -> None:
        self.messages.append(message)
        self.by_sid[message.sid] = message
        self.by_to.setdefault(message.to, []).append(message)
        if message.from_ is not None:
            self.by_from.setdefault(message.from_, []).append(message)
        self._seq = max(self._seq, message.seq)
        if message.gets_sent and message.sent_at > self._checked_at:
            heapq.heappush(self._pending_sends, message.sent_at)
        self.version += 1

    def _index_number(self, number: StoredNumber) -> None:
        self.numbers.append(number)
        self.number_by_phone[number.phone_number] = number
        self.number_by_sid[number.sid] = number
        self._seq = max(self._seq, number.seq)

    def _index_service_number(self, entry: ServiceNumber) -> None:
        self.pools.setdefault(entry.service_sid, []).append(entry)
        self.service_of_number[entry.number_sid] = entry.service_sid
