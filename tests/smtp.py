"""A real SMTP server on loopback (aiosmtpd) that records what it receives and can fail."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class RecordingHandler:
    """Keeps every accepted message; ``fail_with`` makes DATA answer that SMTP reply."""

    messages: list[Message] = field(default_factory=list)
    fail_with: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_with:
            return self.fail_with
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class SmtpServer:
    """Where the server listens and what it holds."""

    host: str
    port: int
    handler: RecordingHandler

    @property
    def messages(self) -> list[Message]:
        """Messages accepted so far."""
        return self.handler.messages


def free_port() -> int:
    """A TCP port nobody listens on right now (aiosmtpd cannot bind port 0 itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_smtp() -> Iterator[SmtpServer]:
    """Start aiosmtpd on a free loopback port for the duration of the block."""
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()
