"""adapters.mail.imap against a real IMAP server: pymap, in memory, on loopback
(tests/imap_server.py; the ``imap`` fixture gives each test a fresh one)."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import pytest

from adapters.mail import imap as imap_module
from adapters.mail.imap import ImapConfig, Mailbox, MailboxError, MailHeaders
from tests.imap_server import ImapServer, run_imap

TOKEN_TO = "Nudge Texts <texts+c12s3456x0123456789abcdef0123@college.edu>"

FIRST = (
    b"Message-ID: <first@mail.x.edu>\r\n"
    b"From: Ana Lopez <Ana.Lopez@x.edu>\r\n"
    b"To: Nudge Texts\r\n <texts+c12s3456x0123456789abcdef0123@college.edu>\r\n"
    b"Subject: Re: Advising\r\n"
    b"\r\n"
    b"Yes, Tuesday works.\r\n"
)
SECOND = (
    b"From: jordan@x.edu\r\n"
    b"To: someone-else@college.edu\r\n"
    b"Cc: texts+c1s2x00000000000000000000@college.edu\r\n"
    b"Delivered-To: texts+c1s2x00000000000000000000@college.edu\r\n"
    b"X-Original-To: texts+orig@college.edu\r\n"
    b"Envelope-To: texts+env@college.edu\r\n"
    b"Subject: no message id\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"\r\n"
    b"Gracias, all\xed estar\xe9.\r\n"  # 8-bit bytes must come back as they went in
)
THIRD = (
    b"Message-ID:   <third@mail.x.edu>  \r\n"
    b"From: =?utf-8?q?Jos=C3=A9?= <jose@x.edu>\r\n"
    b"To: " + TOKEN_TO.encode() + b"\r\n"
    b"Auto-Submitted: auto-replied\r\n"
    b"\r\n"
    b"Out of office.\r\n"
)
MAILS = [FIRST, SECOND, THIRD]


def config_for(server: ImapServer, **changes: Any) -> ImapConfig:
    """The adapter's config for the test server (plain IMAP, its one login)."""
    config = ImapConfig(
        host=server.host,
        port=server.port,
        ssl=False,
        username=server.username,
        password=server.password,
        timeout_s=5.0,
    )
    return replace(config, **changes)


def filled(server: ImapServer) -> list[int]:
    for raw in MAILS:
        server.append(raw)
    uids = server.uids()
    assert len(uids) == 3
    return uids


def test_headers_of_three_mails(imap: ImapServer) -> None:
    uids = filled(imap)
    with Mailbox(config_for(imap)) as box:
        found = box.headers()
    assert found == [
        MailHeaders(uids[0], "<first@mail.x.edu>", "Ana Lopez <Ana.Lopez@x.edu>", [TOKEN_TO]),
        MailHeaders(
            uids[1],
            None,
            "jordan@x.edu",
            [
                "someone-else@college.edu",
                "texts+c1s2x00000000000000000000@college.edu",
                "texts+c1s2x00000000000000000000@college.edu",
                "texts+orig@college.edu",
                "texts+env@college.edu",
            ],
        ),
        MailHeaders(
            uids[2], "<third@mail.x.edu>", "=?utf-8?q?Jos=C3=A9?= <jose@x.edu>", [TOKEN_TO]
        ),
    ]
    assert uids == sorted(uids)


def test_headers_limit_keeps_the_oldest(imap: ImapServer) -> None:
    uids = filled(imap)
    with Mailbox(config_for(imap)) as box:
        assert [h.uid for h in box.headers(limit=2)] == uids[:2]
        assert box.headers(limit=0) == []


def test_mails_flagged_deleted_are_left_out(imap: ImapServer) -> None:
    imap.append(FIRST)
    imap.append(SECOND, flags=["\\Deleted"])
    imap.append(THIRD, flags=["\\Seen"])
    with Mailbox(config_for(imap)) as box:
        assert [h.message_id for h in box.headers()] == ["<first@mail.x.edu>", "<third@mail.x.edu>"]


def test_an_empty_folder_has_no_headers(imap: ImapServer) -> None:
    with Mailbox(config_for(imap)) as box:
        assert box.headers() == []
        assert box.fetch([]) == {}


def test_fetch_returns_the_exact_bytes(imap: ImapServer) -> None:
    uids = filled(imap)
    with Mailbox(config_for(imap)) as box:
        got = box.fetch([uids[2], uids[0], uids[1], uids[0]])
    assert got == {uids[0]: FIRST, uids[1]: SECOND, uids[2]: THIRD}


def test_fetch_leaves_out_a_uid_that_is_not_there(imap: ImapServer) -> None:
    uids = filled(imap)
    with Mailbox(config_for(imap)) as box:
        assert box.fetch([uids[0], uids[-1] + 100]) == {uids[0]: FIRST}


def test_reading_never_sets_seen(imap: ImapServer) -> None:
    uids = filled(imap)
    with Mailbox(config_for(imap)) as box:
        box.headers()
        box.fetch(uids)
    assert imap.flags() == [frozenset(), frozenset(), frozenset()]
    assert imap.messages() == MAILS


def test_fetches_and_moves_go_in_batches(imap: ImapServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap_module, "HEADER_BATCH", 2)
    monkeypatch.setattr(imap_module, "BODY_BATCH", 2)
    monkeypatch.setattr(imap_module, "MOVE_BATCH", 2)
    raws = [FIRST.replace(b"<first@", f"<m{n}@".encode()) for n in range(5)]
    for raw in raws:
        imap.append(raw)
    with Mailbox(config_for(imap)) as box:
        uids = [h.uid for h in box.headers()]
        assert [h.message_id for h in box.headers()] == [f"<m{n}@mail.x.edu>" for n in range(5)]
        assert box.fetch(uids) == dict(zip(uids, raws, strict=True))
        box.move(uids, "nudge-handled")
    assert imap.messages("nudge-handled") == raws
    assert imap.messages() == []


def test_move_creates_the_folder_and_empties_the_source(imap: ImapServer) -> None:
    uids = filled(imap)
    assert "nudge-handled" not in imap.folders()
    with Mailbox(config_for(imap)) as box:
        box.move(uids, "nudge-handled")
        assert box.headers() == []
    assert imap.folders() == ["INBOX", "nudge-handled"]
    assert imap.messages("nudge-handled") == MAILS
    assert imap.messages() == []
    assert imap.flags("nudge-handled") == [frozenset(), frozenset(), frozenset()]


def test_move_into_an_existing_folder_and_to_two_folders(imap: ImapServer) -> None:
    uids = filled(imap)
    imap.append(b"Subject: already there\r\n\r\nold\r\n", folder="nudge-review")
    with Mailbox(config_for(imap)) as box:
        box.move([uids[0], uids[2]], "nudge-handled")
        box.move([uids[1]], "nudge-review")
        box.move([], "nudge-review")  # nothing to do
    assert imap.messages("nudge-handled") == [FIRST, THIRD]
    assert imap.messages("nudge-review") == [b"Subject: already there\r\n\r\nold\r\n", SECOND]
    assert imap.messages() == []


@pytest.mark.parametrize(
    "hide",
    [
        pytest.param(("MOVE",), id="copy-delete-uid-expunge"),
        pytest.param(("MOVE", "UIDPLUS"), id="copy-delete-expunge"),
    ],
)
def test_move_without_the_move_capability(hide: tuple[str, ...]) -> None:
    with run_imap(hide=hide) as server:
        uids = filled(server)
        with Mailbox(config_for(server)) as box:
            assert not box._can("MOVE")
            box.move(uids[:2], "nudge-handled")
            assert [h.uid for h in box.headers()] == uids[2:]
        assert server.messages("nudge-handled") == [FIRST, SECOND]
        assert server.flags("nudge-handled") == [frozenset(), frozenset()]
        assert server.messages() == [THIRD]


def test_a_wrong_password_names_the_host_never_the_password(imap: ImapServer) -> None:
    config = config_for(imap, password="hunter2-not-it")
    with pytest.raises(MailboxError) as caught:
        Mailbox(config).__enter__()
    message = str(caught.value)
    assert message == (
        f"cannot log in to 127.0.0.1:{imap.port} as texts@college.edu: "
        "[AUTHENTICATIONFAILED] Invalid authentication credentials."
    )
    assert "hunter2" not in message and "hunter2" not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "hunter2" not in repr(config) and "hunter2" not in config.describe()


def test_a_non_ascii_password_logs_in() -> None:
    with run_imap(password="pässwörd-✓") as server:
        server.append(FIRST)
        with Mailbox(config_for(server)) as box:
            assert len(box.headers()) == 1


def test_a_closed_port_gives_mailbox_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ImapConfig(host="127.0.0.1", port=port, ssl=False, username="u", password="p")
    with pytest.raises(
        MailboxError, match=rf"^cannot connect to 127\.0\.0\.1:{port}: ConnectionRefusedError"
    ):
        Mailbox(config).__enter__()


def test_a_server_that_never_greets_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts connections in the kernel, never says a word
        port = listener.getsockname()[1]
        config = ImapConfig(host="127.0.0.1", port=port, ssl=False, timeout_s=0.3)
        with pytest.raises(MailboxError, match=r"^cannot connect to .*: no answer within 0\.3 s$"):
            Mailbox(config).__enter__()


def test_tls_against_a_plain_server_gives_mailbox_error(imap: ImapServer) -> None:
    with pytest.raises(MailboxError, match=rf"^cannot connect to 127\.0\.0\.1:{imap.port}: SSL"):
        Mailbox(config_for(imap, ssl=True)).__enter__()


def test_a_missing_folder_gives_mailbox_error(imap: ImapServer) -> None:
    with pytest.raises(MailboxError, match=r"^cannot open folder 'Replies' on 127\.0\.0\.1:\d+: "):
        Mailbox(config_for(imap, folder="Replies")).__enter__()


def test_no_host_configured() -> None:
    with pytest.raises(MailboxError, match="no IMAP host"):
        Mailbox(ImapConfig(host="")).__enter__()


def test_a_dropped_connection_gives_mailbox_error_and_exit_stays_quiet(imap: ImapServer) -> None:
    filled(imap)
    box = Mailbox(config_for(imap))
    with box:
        imap.stop()  # the server says BYE to every open connection and goes away
        with pytest.raises(MailboxError, match=r"^cannot list the mails in 'INBOX' on 127\."):
            box.headers()
    with pytest.raises(MailboxError, match="is not open"):
        box.headers()


def test_describe_never_shows_the_password() -> None:
    config = ImapConfig(host="imap.college.edu", username="texts@college.edu", password="s3cret")
    assert config.describe() == "imaps://texts@college.edu@imap.college.edu:993/INBOX"
    assert ImapConfig(host="h", port=143, ssl=False).describe() == "imap://h:143/INBOX"
    assert "s3cret" not in repr(config)
