"""A real SMTP server on loopback (aiosmtpd) that records what it receives and can fail.

Knobs on ``RecordingHandler`` (set them from the test thread at any time):

* ``fail_with``: the reply to the end of DATA (e.g. ``"451 try later"``); nothing is kept.
* ``fail_rcpt_with``: the reply to RCPT TO (e.g. ``"550 no such user"``).
* ``delay_s``: seconds the server waits before answering the end of DATA.
* ``drop_after_data``: close the connection instead of answering the end of DATA.
* ``record_before_reply``: with ``delay_s`` or ``drop_after_data``, keep the message before
  the wait/drop (True: "the server has it but the client never heard") or only when it
  answers (False: a client that gives up first leaves nothing on the server).

The server runs in its own thread; ``messages``, ``envelopes`` and ``connections`` of
``SmtpServer`` are snapshots taken under a lock, safe to read from the test thread.
"""

from __future__ import annotations

import asyncio
import email
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Envelope(NamedTuple):
    """One accepted message with its SMTP envelope (what RCPT TO really named)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: Message


@dataclass
class RecordingHandler:
    """Keeps every accepted message; the knobs above make it fail (see module docstring).

    aiosmtpd treats every ``handle_*`` attribute as a hook: helpers here must not use that
    prefix.
    """

    messages: list[Message] = field(default_factory=list)
    fail_with: str | None = None
    fail_rcpt_with: str | None = None
    delay_s: float = 0.0
    drop_after_data: bool = False
    record_before_reply: bool = True
    envelopes: list[Envelope] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    live: set[SMTP] = field(default_factory=set, repr=False)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.fail_rcpt_with:
            return self.fail_rcpt_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_with:
            return self.fail_with
        stalls = self.delay_s > 0 or self.drop_after_data
        if self.record_before_reply or not stalls:
            self._record(envelope)
        if self.drop_after_data:
            server.transport.close()
            # Closing cancels this handler (connection_lost): no reply is ever written.
            await asyncio.sleep(3600)
        if self.delay_s > 0:
            # A client that gives up first closes the connection, which cancels this wait.
            await asyncio.sleep(self.delay_s)
            if not self.record_before_reply:
                self._record(envelope)
        return "250 OK"

    def _record(self, envelope: Any) -> None:
        msg = email.message_from_bytes(envelope.content)
        with self.lock:
            self.messages.append(msg)
            self.envelopes.append(Envelope(envelope.mail_from, tuple(envelope.rcpt_tos), msg))

    def opened(self, server: SMTP) -> None:
        with self.lock:
            self.connections += 1
            self.live.add(server)

    def closed(self, server: SMTP) -> None:
        with self.lock:
            self.live.discard(server)


class _CountingSMTP(SMTP):
    """Tells the handler about every client connection (to count connection reuse)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # STARTTLS calls this again on the same connection
        super().connection_made(transport)
        if first:
            self.event_handler.opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.closed(self)
        super().connection_lost(error)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class SmtpServer:
    """Where the server listens and what it holds."""

    host: str
    port: int
    handler: RecordingHandler
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def messages(self) -> list[Message]:
        """Messages accepted so far (a snapshot)."""
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def envelopes(self) -> list[Envelope]:
        """Accepted messages with their envelope sender and recipients (a snapshot)."""
        with self.handler.lock:
            return list(self.handler.envelopes)

    @property
    def connections(self) -> int:
        """Client connections opened since the server started."""
        with self.handler.lock:
            return self.handler.connections

    def drop_connections(self, timeout_s: float = 2.0) -> None:
        """Close every open client connection now, as a server does with idle ones."""
        assert self.loop is not None
        with self.handler.lock:
            live = list(self.handler.live)
        for server in live:
            if server.transport is not None:
                self.loop.call_soon_threadsafe(server.transport.close)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.handler.lock:
                if not self.handler.live:
                    return
            time.sleep(0.01)
        raise TimeoutError("the SMTP server did not close its connections")


def free_port() -> int:
    """A TCP port nobody listens on right now (aiosmtpd cannot bind port 0 itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_smtp() -> Iterator[SmtpServer]:
    """Start aiosmtpd on a free loopback port for the duration of the block."""
    handler = RecordingHandler()
    controller = _Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    with handler.lock:
        handler.connections = 0  # start() opened one connection of its own to check readiness
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler, controller.loop)
    finally:
        controller.stop()
