"""The reply mailbox over IMAP: ``Mailbox``, configured by an ``ImapConfig``.

Staff notifications and fallback emails carry ``Reply-To: texts+<token>@college.edu``; the
poller (``flows/poll_mailbox.py``) opens that mailbox with ``Mailbox`` and, per pass::

    with Mailbox(config) as box:           # connect (TLS), log in, SELECT config.folder
        for h in box.headers():            # UID, Message-ID, From, recipient headers
            ...                            #   (header fields only, never sets \\Seen)
        raws = box.fetch(uids)             # whole RFC 822 bytes (BODY.PEEK[]: no \\Seen)
        box.move(uids, config.handled_folder)   # MOVE, or COPY + \\Deleted + EXPUNGE

Nothing is marked read: what a pass did is recorded by moving each mail out of the folder
it reads (to ``handled_folder`` or ``review_folder``, created when missing), so a mail the
pass did not finish is simply read again next time.

Built on imapclient (over the standard library's imaplib). Every connection, login or
protocol failure is a ``MailboxError`` whose message names the server and the cause, e.g.
``cannot log in to imap.college.edu:993 as texts@college.edu: [AUTHENTICATIONFAILED] …``;
it never contains the password (nor does anything this module logs). Message contents are
never logged.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from imapclient import IMAPClient  # type: ignore[import-untyped]  # ships no py.typed
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]

from domain.mail_text import RECIPIENT_HEADERS, header_fields

log = logging.getLogger(__name__)

#: UIDs per FETCH of header fields (small responses).
HEADER_BATCH = 200
#: UIDs per FETCH of whole messages (bounds memory and the size of one response).
BODY_BATCH = 50
#: UIDs per MOVE / COPY / STORE / UID EXPUNGE command (keeps command lines short).
MOVE_BATCH = 200

_HEADER_NAMES = ("Message-ID", "From", *RECIPIENT_HEADERS)
_HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS ({})]".format(" ".join(n.upper() for n in _HEADER_NAMES))
_BYTES_REPR = re.compile(r"""\bb(['"])(.*?)\1""")


@dataclass(frozen=True, slots=True)
class ImapConfig:
    """Where the reply mailbox is and how to log in. ``oauth2``: XOAUTH2 with ``password``
    holding the access token (Microsoft 365, Google). ``folder`` is read; mails are moved to
    ``handled_folder`` or ``review_folder``. ``timeout_s`` bounds connecting and each read.
    Built by ``nudge.wiring`` from the settings."""

    host: str
    port: int = 993
    ssl: bool = True
    username: str = ""
    password: str = ""
    oauth2: bool = False
    folder: str = "INBOX"
    handled_folder: str = "nudge-handled"
    review_folder: str = "nudge-review"
    timeout_s: float = 30.0

    def describe(self) -> str:
        """The mailbox for logs and messages, never with the password:
        ``imaps://texts@college.edu@imap.college.edu:993/INBOX``."""
        scheme = "imaps" if self.ssl else "imap"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.folder}"

    def __repr__(self) -> str:
        return f"ImapConfig({self.describe()!r}, oauth2={self.oauth2})"


@dataclass(frozen=True, slots=True)
class MailHeaders:
    """What a header-only fetch shows of one mail: its UID in the folder, the Message-ID as
    written (None when missing), the raw ``From`` value and the raw values of ``To``, ``Cc``,
    ``Delivered-To``, ``X-Original-To`` and ``Envelope-To`` (in that order, unfolded)."""

    uid: int
    message_id: str | None
    from_: str
    to: list[str]


class MailboxError(Exception):
    """The mailbox could not be reached, logged into or read/changed; the message names the
    server and the cause (never the password)."""


class Mailbox:
    """The reply mailbox, open inside a ``with`` block: connected, logged in and with
    ``config.folder`` selected on entry; logged out on exit."""

    def __init__(self, config: ImapConfig) -> None:
        """A mailbox for ``config``; nothing is connected before ``with``."""
        self._config = config
        self._client: Any = None  # an IMAPClient while open
        self._folders: set[str] = set()  # folders known to exist on the server

    # --- opening and closing -----------------------------------------------------------

    def __enter__(self) -> Mailbox:
        """Connect, log in and select ``config.folder``; ``MailboxError`` when any fails."""
        cfg = self._config
        if not cfg.host:
            raise MailboxError("no IMAP host is configured for the reply mailbox")
        try:
            client = IMAPClient(cfg.host, port=cfg.port, ssl=cfg.ssl, timeout=cfg.timeout_s)
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(f"cannot connect to {self._where()}: {self._cause(exc)}") from exc
        # imapclient writes a command line and its CRLF separately: without TCP_NODELAY each
        # such command waits out Nagle and the server's delayed ACK (~40 ms, or a round trip).
        with contextlib.suppress(OSError, AttributeError):
            client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._login(client)
            self._select(client)
        except BaseException:
            _close(client)
            raise
        self._client = client
        self._folders = {cfg.folder}
        log.debug("imap: opened %s", cfg.describe())
        return self

    def _login(self, client: Any) -> None:
        cfg = self._config
        who = f"{self._where()} as {cfg.username or '(no username)'}"
        try:
            if cfg.oauth2:
                client.oauth2_login(cfg.username, cfg.password)
            elif (cfg.username + cfg.password).isascii():
                client.login(cfg.username, cfg.password)
            else:  # LOGIN cannot carry non-ASCII; SASL PLAIN sends UTF-8
                client.plain_login(cfg.username, cfg.password)
        except (OSError, IMAPClientError, UnicodeError, ValueError) as exc:
            # "from None": the chained error could carry what was sent (the password).
            raise MailboxError(f"cannot log in to {who}: {self._cause(exc)}") from None

    def _select(self, client: Any) -> None:
        cfg = self._config
        try:
            client.select_folder(cfg.folder)
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(
                f"cannot open folder {cfg.folder!r} on {self._where()}: {self._cause(exc)}"
            ) from exc

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Log out (or just close the connection when that fails); never raises."""
        client, self._client = self._client, None
        if client is not None:
            _close(client)
            log.debug("imap: closed %s", self._config.describe())

    # --- reading -----------------------------------------------------------------------

    def headers(self, limit: int | None = None) -> list[MailHeaders]:
        """Every mail in the folder (at most ``limit``, the oldest), oldest UID first, with
        header fields only (``BODY.PEEK[HEADER.FIELDS …]``: never sets ``\\Seen``). Mails
        already flagged ``\\Deleted`` (on their way out, e.g. copied by an earlier ``move``
        that stopped before its EXPUNGE) are left out."""
        uids = sorted(int(u) for u in self._call("list the mails", "search", "UNDELETED"))
        if limit is not None:
            uids = uids[: max(limit, 0)]
        found: list[MailHeaders] = []
        for batch in _batches(uids, HEADER_BATCH):
            response = self._call("read mail headers", "fetch", batch, [_HEADER_ITEM])
            for uid in batch:
                data = _section(response.get(uid), b"BODY[HEADER")
                if data is None:
                    continue  # expunged meanwhile (another client moved it)
                fields = header_fields(data)
                found.append(MailHeaders(uid, fields.message_id, fields.from_, fields.to))
        log.debug("imap: %d mails in %s", len(found), self._config.folder)
        return found

    def fetch(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The whole RFC 822 bytes of each mail (``BODY.PEEK[]``: never sets ``\\Seen``),
        by UID; a UID no longer in the folder is left out."""
        found: dict[int, bytes] = {}
        for batch in _batches(list(dict.fromkeys(int(u) for u in uids)), BODY_BATCH):
            response = self._call("fetch mails", "fetch", batch, ["BODY.PEEK[]"])
            for uid in batch:
                data = _section(response.get(uid), b"BODY[]")
                if data is not None:
                    found[uid] = data
        return found

    # --- moving ------------------------------------------------------------------------

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Move mails (by UID) out of the selected folder into ``folder``, creating it when
        missing: ``MOVE`` when the server has it, else ``COPY``, ``\\Deleted`` and
        ``UID EXPUNGE`` (plain ``EXPUNGE`` on a server without UIDPLUS)."""
        wanted = list(dict.fromkeys(int(u) for u in uids))
        if not wanted:
            return
        self._ensure_folder(folder)
        what = f"move {len(wanted)} mails to {folder!r}"
        if self._can("MOVE"):
            for batch in _batches(wanted, MOVE_BATCH):
                self._call(what, "move", batch, folder)
            return
        uidplus = self._can("UIDPLUS")
        for batch in _batches(wanted, MOVE_BATCH):
            self._call(what, "copy", batch, folder)
            self._call(what, "add_flags", batch, [b"\\Deleted"], silent=True)
            if uidplus:
                self._call(what, "uid_expunge", batch)
        if not uidplus:
            self._call(what, "expunge")

    def _ensure_folder(self, folder: str) -> None:
        if folder in self._folders:
            return
        if not self._call(f"look up folder {folder!r}", "folder_exists", folder):
            try:
                self._call(f"create folder {folder!r}", "create_folder", folder)
            except MailboxError:
                # Another poller may have just created it: fine if it is there now.
                if not self._call(f"look up folder {folder!r}", "folder_exists", folder):
                    raise
            log.info("imap: created folder %r on %s", folder, self._config.host)
        self._folders.add(folder)

    def _can(self, capability: str) -> bool:
        """Whether the server announced ``capability`` (after login)."""
        return bool(self._call("read capabilities", "has_capability", capability))

    # --- errors --------------------------------------------------------------------------

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``client.<method>(*args, **kwargs)``, with imapclient/socket/TLS errors made
        ``MailboxError`` ("cannot <what> in 'INBOX' on host:port: <cause>")."""
        if self._client is None:
            raise MailboxError(f"cannot {what}: the mailbox {self._where()} is not open")
        try:
            return getattr(self._client, method)(*args, **kwargs)
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(
                f"cannot {what} in {self._config.folder!r} on {self._where()}: {self._cause(exc)}"
            ) from exc

    def _where(self) -> str:
        return f"{self._config.host}:{self._config.port}"

    def _cause(self, exc: BaseException) -> str:
        """A one-line reason: the server's words (imaplib's ``b'…'`` reprs unwrapped) or the
        socket/TLS error, with the password (if somehow echoed) blanked out."""
        if isinstance(exc, TimeoutError):
            text = f"no answer within {self._config.timeout_s:g} s"
        elif isinstance(exc, ssl.SSLError | ConnectionError | socket.gaierror):
            text = f"{type(exc).__name__}: {exc}"
        else:
            text = str(exc) or type(exc).__name__
        text = _BYTES_REPR.sub(lambda m: m.group(2), text)
        text = " ".join(text.split())
        if self._config.password:
            text = text.replace(self._config.password, "***")
        return text[:500]


def _section(item: Any, prefix: bytes) -> bytes | None:
    """The body section of one FETCH result whose key starts with ``prefix`` (servers echo
    the section name in their own way); None when the message is not in the result."""
    if not isinstance(item, dict):
        return None
    for key, value in item.items():
        if isinstance(key, bytes) and key.upper().startswith(prefix):
            return value if isinstance(value, bytes) else b""
    return None


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _close(client: Any) -> None:
    """LOGOUT, or drop the connection when the server does not answer; never raises."""
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception as exc:  # already closed
            log.debug("imap: closing the connection failed: %s", type(exc).__name__)


__all__ = ["ImapConfig", "MailHeaders", "Mailbox", "MailboxError"]
