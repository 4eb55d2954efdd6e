"""A real IMAP server on loopback for tests: pymap (PyPI) with its in-memory ``dict`` backend.

``run_imap()`` starts one server in a background thread (its own asyncio loop) on a free
127.0.0.1 port chosen by the OS, plain IMAP (no TLS, no STARTTLS), with one login
(``texts@college.edu`` / ``secret``) whose INBOX starts empty. The server is pymap's own
``IMAPServer`` (the object ``pymap dict`` serves), set up the way ``pymap.main.run`` does it,
with three test-friendly settings: 1,000 PBKDF2 rounds per password check instead of
500,000, no delay after a failed login, and password checks run inline (no thread pool).

``ImapServer`` reads and writes its mailboxes the way any mail client would, over IMAP with
the standard library's ``imaplib`` (an independent client, so a test of an adapter built on
imapclient checks it against something else): ``append``, ``messages`` (exact bytes, without
setting ``\\Seen``), ``flags`` and ``folders``.

Startup waits until the port answers with an IMAP greeting (``ImapServerError`` after
``timeout_s``, 15 s by default); ``stop()`` closes the listener, ends the open client
connections (pymap says ``BYE``) and joins the thread. A fresh server takes a few
milliseconds to start, so each test gets its own: nothing leaks between tests, and UIDs
start afresh in every folder (at 101: the dict backend's first UID).
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import socket
import threading
import time
import uuid
from argparse import Namespace
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from proxyprotocol.sock import SocketInfo
from pymap.backend.dict import Config, DictBackend, Login
from pymap.concurrent import Subsystem
from pymap.imap import IMAPServer
from pymap.user import Passwords, UserMetadata
from pysasl.hashing import BuiltinHash

USERNAME = "texts@college.edu"
PASSWORD = "secret"  # a test login on a loopback server that lives for one test

_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')


class ImapServerError(RuntimeError):
    """The test IMAP server did not start, or a helper's IMAP command failed."""


class _TestConfig(Config):
    """The dict backend's config with a fixed greeting (no ``socket.getfqdn()`` DNS lookup
    for every connection) and, for tests of client fallbacks, capabilities it can keep
    from announcing (``hidden``: e.g. ``MOVE``, ``UIDPLUS``)."""

    hidden: frozenset[bytes] = frozenset()

    @property
    def greeting(self) -> bytes:
        return b"Server ready nudge-test"

    @property
    def login_capability(self) -> Sequence[bytes]:
        return [cap for cap in super().login_capability if cap.upper() not in self.hidden]


def _args(username: str, password: str) -> Namespace:
    """What ``pymap dict --demo-user U --demo-password P --no-tls --host 127.0.0.1 --port 0``
    would parse to (the attributes ``IMAPConfig.from_args`` and the dict backend read)."""
    return Namespace(
        host="127.0.0.1",
        port=0,
        debug=False,
        cert=None,
        key=None,
        tls=False,
        passlib_cfg=None,
        proxy_protocol=None,
        inherited_sockets=None,
        demo_data=False,
        demo_user=username,
        demo_password=password,
    )


@dataclass
class ImapServer:
    """A running pymap server: where it listens, its one login, and mailbox helpers."""

    host: str
    port: int
    username: str = USERNAME
    password: str = PASSWORD
    timeout_s: float = 10.0
    _thread: threading.Thread | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _stopping: asyncio.Event | None = field(default=None, repr=False)

    # --- mailbox helpers (over IMAP, with imaplib) ----------------------------------------

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in ``imaplib`` connection to this server, logged out afterwards."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=self.timeout_s)
        # imaplib writes a command and its literal separately: without this, Nagle and the
        # peer's delayed ACK cost ~40 ms per APPEND.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if (self.username + self.password).isascii():
                _ok(conn.login(self.username, self.password), "LOGIN")
            else:  # LOGIN is ASCII-only: SASL PLAIN carries UTF-8
                plain = f"\0{self.username}\0{self.password}"
                _ok(conn.authenticate("PLAIN", lambda _: plain.encode()), "AUTHENTICATE")
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def append(self, raw: bytes, folder: str = "INBOX", flags: Sequence[str] = ()) -> None:
        """Put one message into ``folder`` (created if needed) with ``flags`` (``"\\Seen"``…).
        The bytes are kept exactly, but for line ends: imaplib sends bare LF/CR as CRLF."""
        with self.client() as conn:
            if folder.upper() != "INBOX" and folder not in self._list(conn):
                _ok(conn.create(_quote(folder)), "CREATE")
            flag_list = f"({' '.join(flags)})" if flags else None
            _ok(conn.append(_quote(folder), flag_list, None, raw), "APPEND")

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """The exact bytes of every message in ``folder`` now, oldest UID first (``[]`` when
        the folder does not exist). Read-only: no flag changes."""
        return [raw for _, _, raw in self._fetch_all(folder)]

    def uids(self, folder: str = "INBOX") -> list[int]:
        """The UIDs in ``folder`` now, ascending (``[]`` when it does not exist)."""
        return [uid for uid, _, _ in self._fetch_all(folder)]

    def flags(self, folder: str = "INBOX") -> list[frozenset[str]]:
        """The flags of every message in ``folder`` (``\\Seen``, ``\\Deleted``…), oldest
        first, without ``\\Recent`` (which depends on who looked first)."""
        return [flags for _, flags, _ in self._fetch_all(folder)]

    def folders(self) -> list[str]:
        """Every folder of the login, sorted (``INBOX`` included)."""
        with self.client() as conn:
            return sorted(self._list(conn))

    def _fetch_all(self, folder: str) -> list[tuple[int, frozenset[str], bytes]]:
        with self.client() as conn:
            if folder.upper() != "INBOX" and folder not in self._list(conn):
                return []
            _ok(conn.select(_quote(folder), readonly=True), "EXAMINE")
            typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            _ok((typ, data), "UID FETCH")
            found: list[tuple[int, frozenset[str], bytes]] = []
            for item in data:
                if not isinstance(item, tuple):
                    continue  # the closing b")" of a literal, or an empty mailbox's None
                head, raw = item
                uid = _FETCH_UID.search(head)
                flags = _FETCH_FLAGS.search(head)
                if uid is None or flags is None:
                    raise ImapServerError(f"unexpected FETCH response: {head!r}")
                names = frozenset(flags.group(1).decode().split()) - {"\\Recent"}
                found.append((int(uid.group(1)), names, raw))
            return sorted(found, key=lambda row: row[0])

    @staticmethod
    def _list(conn: imaplib.IMAP4) -> list[str]:
        typ, data = conn.list()
        _ok((typ, data), "LIST")
        names: list[str] = []
        for line in data:
            if not isinstance(line, bytes):
                continue
            match = _LIST_LINE.match(line)
            if match is None:
                raise ImapServerError(f"unexpected LIST response: {line!r}")
            name = match.group("name").decode()
            names.append(name[1:-1] if name.startswith('"') else name)
        return names

    # --- lifecycle ---------------------------------------------------------------------

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the listener and every client connection, and end the server's thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        self._thread = None
        with contextlib.suppress(RuntimeError):  # the loop already ended (it failed)
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout_s)
        if thread.is_alive():
            raise ImapServerError(f"the IMAP server thread did not end within {timeout_s} s")


class _Runner:
    """The server's thread: its own loop, pymap set up as ``pymap.main.run`` does."""

    def __init__(self, username: str, password: str, hide: frozenset[bytes]) -> None:
        self.username = username
        self.password = password
        self.hide = hide
        self.ready = threading.Event()
        self.port: int | None = None
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.connections: set[asyncio.Task[None]] = set()

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self.error = exc
        finally:
            self.ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        config = _TestConfig.from_args(
            _args(self.username, self.password),
            hash_context=BuiltinHash(rounds=1000),
            invalid_user_sleep=0.0,
            cpu_subsystem=Subsystem.for_asyncio(),
        )
        config.hidden = self.hide
        backend = await _backend_with(config)
        config.apply_context()
        imap = IMAPServer(backend.login, config)

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.connections.add(task)
            try:
                await imap(
                    reader, writer, SocketInfo.get(writer, None, unique_id=uuid.uuid4().bytes)
                )
            finally:
                self.connections.discard(task)

        server = await asyncio.start_server(on_client, host="127.0.0.1", port=0)
        try:
            self.port = int(server.sockets[0].getsockname()[1])
            self.ready.set()
            await self.stopping.wait()
        finally:
            server.close()
            for task in list(self.connections):
                task.cancel()  # pymap answers BYE and closes the socket
            if self.connections:
                await asyncio.wait(list(self.connections), timeout=5.0)
            await server.wait_closed()


async def _backend_with(config: Config) -> DictBackend:
    """A dict backend on ``config`` whose one user is the config's demo user (what
    ``DictBackend.init`` does, with the config given instead of built)."""
    login = Login(config)
    hashed = await Passwords(config).hash_password(config.demo_password)
    await login.demo_user_identity.set(UserMetadata(config, config.demo_user, password=hashed))
    return DictBackend(login, config)


def _greets(host: str, port: int, timeout_s: float) -> bool:
    """True when a TCP connection to the port gets an IMAP ``* OK`` greeting."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


def start_imap_server(
    username: str = USERNAME,
    password: str = PASSWORD,
    *,
    hide: Iterable[str] = (),
    timeout_s: float = 15.0,
) -> ImapServer:
    """Start pymap in a background thread and return once it greets IMAP clients on its
    port. ``hide``: capabilities it must not announce after login (``"MOVE"``,
    ``"UIDPLUS"``), to test what a client does with an older server.
    ``ImapServerError`` (with the cause) if it is not up within ``timeout_s``."""
    runner = _Runner(username, password, frozenset(c.upper().encode() for c in hide))
    thread = threading.Thread(target=runner.run, name="pymap-test-server", daemon=True)
    started = time.monotonic()
    thread.start()
    if not runner.ready.wait(timeout_s) or runner.port is None:
        cause = f": {runner.error!r}" if runner.error else ""
        if runner.loop is not None and runner.stopping is not None and runner.error is None:
            with contextlib.suppress(RuntimeError):
                runner.loop.call_soon_threadsafe(runner.stopping.set)
        thread.join(5.0)
        raise ImapServerError(f"the pymap IMAP server did not start within {timeout_s} s{cause}")
    assert runner.loop is not None and runner.stopping is not None
    server = ImapServer("127.0.0.1", runner.port, username, password)
    server._thread, server._loop, server._stopping = thread, runner.loop, runner.stopping
    while not _greets(server.host, server.port, timeout_s=2.0):
        if time.monotonic() - started > timeout_s or not thread.is_alive():
            server.stop()
            raise ImapServerError(
                f"the pymap IMAP server on port {server.port} gave no greeting within {timeout_s} s"
            )
        time.sleep(0.05)
    return server


@contextlib.contextmanager
def run_imap(
    username: str = USERNAME, password: str = PASSWORD, *, hide: Iterable[str] = ()
) -> Iterator[ImapServer]:
    """A fresh pymap server for the duration of the block (stopped afterwards)."""
    server = start_imap_server(username, password, hide=hide)
    try:
        yield server
    finally:
        server.stop()


def _quote(folder: str) -> str:
    """A folder name as an IMAP quoted string (imaplib sends names as given)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(response: tuple[str, list[object]] | tuple[str, object], what: str) -> None:
    typ = response[0]
    if typ != "OK":
        raise ImapServerError(f"{what} failed: {response[1]!r}")
