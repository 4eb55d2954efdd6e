"""``nudge inbox --mark-read`` and ``nudge inbox-link``: replies marked read by student, by
unknown number or all at once, and an unknown number's replies given to a student; on
SQLite and PostgreSQL (``cli_db``). The people and messages are those of
tests/models/test_threads.py (:func:`arrange`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.messaging import InboundMessage
from tests.cli.test_conversation import nudge, nudge_json
from tests.models.test_threads import UNKNOWN, World, _in, arrange, at


def world(engine: Engine) -> World:
    """The thread of :func:`arrange`, and one more unread reply of Ana's to Ann."""
    with Session(engine, expire_on_commit=False) as s:
        w = arrange(s)
        _in(s, "SM8", person_id=w.ana, staff_person_id=w.ann, body="again", received_at=at(250))
        _in(s, "SM9", person_id=w.ana, staff_person_id=w.ann, body="and?", received_at=at(251))
        s.commit()
        return w


def unread(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return {
            r.provider_sid
            for r in s.exec(select(InboundMessage)).all()
            if r.read_at is None and r.keyword == "none"
        }


def test_mark_read_by_student_by_number_and_all(cli_db: Path, engine: Engine) -> None:
    world(engine)
    # Unread replies: to Ann, SM8 and SM9 (Ana), SM4 (the unknown number), SM3 (Sam);
    # to Bo, EM1 (Ana's email).
    assert unread(engine) == {"SM3", "SM4", "SM8", "SM9", "EM1"}
    assert nudge("inbox", "--mark-read", "--staff", "A1", "--student", "S1") == (
        0,
        "marked 2 unread replies from S1 to A1 read\n",
        "",
    )
    assert unread(engine) == {"SM3", "SM4", "EM1"}
    # The number as a person types it; output masked.
    assert nudge_json("inbox", "--mark-read", "--staff", "A1", "--from", "(212) 555-0199") == (
        0,
        {"staff": "A1", "student": None, "from": "+1******0199", "marked_read": 1},
    )
    assert unread(engine) == {"SM3", "EM1"}
    assert nudge("inbox", "--mark-read", "--staff", "A1", "--from", UNKNOWN) == (
        0,
        "marked 0 unread replies from +1******0199 to A1 read\n",
        "",
    )
    assert nudge("inbox", "--mark-read", "--staff", "A1") == (
        0,
        "marked 1 unread reply to A1 read\n",
        "",
    )
    assert unread(engine) == {"EM1"}  # Bo's are Bo's
    assert nudge("inbox", "--mark-read", "--staff", "B2") == (
        0,
        "marked 1 unread reply to B2 read\n",
        "",
    )
    assert unread(engine) == set()
    assert nudge("inbox", "--unread") == (0, "no conversations\n", "")


def test_mark_read_mistakes_are_named_exit_2(cli_db: Path, engine: Engine) -> None:
    world(engine)
    cases = {
        ("--mark-read",): "--mark-read needs --staff: whose replies to mark read",
        ("--mark-read", "--staff", "X9"): "no staff member with SIS id 'X9'",
        ("--mark-read", "--staff", "A1", "--student", "S404"): "no student with SIS id 'S404'",
        (
            "--mark-read",
            "--staff",
            "A1",
            "--student",
            "S1",
            "--from",
            UNKNOWN,
        ): "choose one of --student and --from",
        ("--mark-read", "--staff", "A1", "--from", "12"): (
            "** is not a valid phone number (too_short)"
        ),
        ("--student", "S1"): "--student and --from go with --mark-read",
    }
    for args, message in cases.items():
        assert nudge("inbox", *args) == (2, "", f"error: {message}\n"), args
    assert len(unread(engine)) == 5  # nothing was marked


def test_the_inbox_shows_email_replies_and_reveals_numbers_on_request(
    cli_db: Path, engine: Engine
) -> None:
    world(engine)
    code, out, _err = nudge("inbox", "--staff", "B2")
    assert (code, out) == (
        0,
        "Ana Lopez (S1) -> B2: 1 unread of 1, last 2026-03-02 13:00 EST by email\n"
        "    Thanks, I'll come.\n",
    )
    code, data = nudge_json("inbox", "--staff", "B2")
    assert data["conversations"][0]["last_channel"] == "email"
    masked = nudge("inbox", "--staff", "A1")[1]
    assert "+1******0199 -> A1" in masked and UNKNOWN not in masked
    assert f"{UNKNOWN} -> A1" in nudge("inbox", "--staff", "A1", "--reveal")[1]


def test_link_gives_an_unknown_numbers_replies_to_the_student(cli_db: Path, engine: Engine) -> None:
    w = world(engine)
    with Session(engine) as s:  # another unknown number stays unknown
        _in(s, "SM7", from_e164="+12125550177", staff_person_id=w.ann, body="someone else")
        s.commit()
    before = nudge_json("conversation", "S1")[1]["messages"]
    assert nudge("inbox-link", "--from", UNKNOWN, "--student", "S1") == (
        0,
        "linked 2 messages from +1******0199 to S1 (see nudge conversation S1)\n",
        "",
    )
    with Session(engine) as s:
        owners = {r.provider_sid: r.person_id for r in s.exec(select(InboundMessage)).all()}
    assert (owners["SM4"], owners["SM5"], owners["SM7"]) == (w.ana, w.ana, None)
    after = nudge_json("conversation", "S1")[1]["messages"]
    assert [(m["direction"], m["kind"], m["body"], m["at"]) for m in after if m not in before] == [
        ("in", "reply", "new phone, it's Ana", "2026-03-02T13:20:00-05:00"),
        ("in", "stop", "STOP", "2026-03-02T13:21:00-05:00"),
        (
            "out",
            "keyword_reply",
            "You have successfully been unsubscribed.",
            "2026-03-02T13:21:30-05:00",
        ),
    ]
    # Linked replies join Ana's conversation in the inbox too.
    out = nudge("inbox", "--staff", "A1")[1]
    assert "+1******0199" not in out
    assert "Ana Lopez (S1) -> A1: 3 unread of 4, last 2026-03-02 14:11 EST\n" in out
    assert nudge_json("inbox-link", "--from", UNKNOWN, "--student", "S1") == (
        0,
        {"from": "+1******0199", "student": "S1", "linked": 0},
    )
    assert nudge("inbox-link", "--from", UNKNOWN, "--student", "S1")[1] == (
        "no messages from +1******0199 without a student: nothing linked\n"
    )
    assert nudge("inbox-link", "--from", UNKNOWN, "--student", "A1") == (
        2,
        "",
        "error: no student with SIS id 'A1'\n",
    )
