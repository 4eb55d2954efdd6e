"""``nudge conversation STUDENT``: the whole thread, both ways, as a person reads it and as
JSON; on SQLite and PostgreSQL (``cli_db``). The thread is the one of
tests/models/test_threads.py (:func:`arrange`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from nudge.cli.main import app
from tests.models.test_threads import World, arrange

runner = CliRunner()


def nudge(*args: str) -> tuple[int, str, str]:
    """Run ``nudge ARGS``: exit code, stdout, stderr."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def nudge_json(*args: str) -> tuple[int, dict[str, Any]]:
    """Run ``nudge ARGS --json``: exit code and the one JSON object printed."""
    code, out, _err = nudge(*args, "--json")
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return code, json.loads(lines[0])


def world(engine: Engine) -> World:
    with Session(engine, expire_on_commit=False) as s:
        return arrange(s)


FULL = """\
Ana Lopez (S1): 9 messages, oldest first
2026-03-02 10:00 EST  📱 sms  Ann Lee → Ana Lopez  delivered  [opt-in notice]
    Ann Lee of the college will text you here. Reply STOP to opt out.
2026-03-02 10:00 EST  📱 sms  Ann Lee → Ana Lopez  delivered
    Hi Ana, forms are due Friday.
2026-03-02 10:10 EST  📱 sms  Ann Lee ← Ana Lopez  received
    Is the form online?
2026-03-02 11:00 EST  📱 sms  Ann Lee → Ana Lopez  undelivered (30003 Unreachable destination handset)
    Yes: college.edu/forms
2026-03-02 12:00 EST  ✉ email  Bo Ray → Ana Lopez  fallback_email (30006)  [instead of a text]
    Subject: Message from Bo Ray
    Tutoring opens Monday.

    — Bo Ray
2026-03-02 13:00 EST  ✉ email  Bo Ray ← Ana Lopez  received
    Thanks, I'll come.
2026-03-02 14:00 EST  📱 sms  Ann Lee ← Ana Lopez  received  [STOP]
    STOP
2026-03-02 14:00 EST  📱 sms  Ann Lee → Ana Lopez  sent  [keyword answer]
    You have successfully been unsubscribed.
2026-03-02 15:00 EST  📱 sms  Ann Lee → Ana Lopez  skipped (cancelled)
    Reminder: forms are due today.
"""


def test_the_whole_conversation_oldest_first(cli_db: Path, engine: Engine) -> None:
    world(engine)
    assert nudge("conversation", "S1") == (0, FULL, "")


def test_one_staff_members_side_and_the_last_messages(cli_db: Path, engine: Engine) -> None:
    world(engine)
    code, out, err = nudge("conversation", "S1", "--staff", "B2")
    assert (code, err) == (0, "")
    assert out == (
        "Ana Lopez (S1) and Bo Ray (B2): 2 messages, oldest first\n"
        "2026-03-02 12:00 EST  ✉ email  Bo Ray → Ana Lopez  fallback_email (30006)  "
        "[instead of a text]\n"
        "    Subject: Message from Bo Ray\n"
        "    Tutoring opens Monday.\n"
        "\n"
        "    — Bo Ray\n"
        "2026-03-02 13:00 EST  ✉ email  Bo Ray ← Ana Lopez  received\n"
        "    Thanks, I'll come.\n"
    )
    code, out, _err = nudge("conversation", "S1", "--limit", "2")
    assert out.splitlines()[0] == "Ana Lopez (S1): 2 messages, oldest first"
    assert out.splitlines()[1:] == FULL.splitlines()[-4:]
    assert nudge("conversation", "S2", "--staff", "B2") == (
        0,
        "no messages between Sam Diaz (S2) and Bo Ray (B2)\n",
        "",
    )


def test_json_has_the_student_the_staff_member_and_each_message(
    cli_db: Path, engine: Engine
) -> None:
    w = world(engine)
    code, data = nudge_json("conversation", "S1", "--staff", "A1", "--limit", "3")
    assert code == 0
    assert data["student"] == {"id": "S1", "name": "Ana Lopez"}
    assert data["staff"] == {"id": "A1", "name": "Ann Lee"}
    assert data["messages"] == [
        {
            "id": w.ids["stop"],
            "direction": "in",
            "channel": "sms",
            "status": "received",
            "at": "2026-03-02T14:00:00-05:00",
            "body": "STOP",
            "error": None,
            "staff_id": "A1",
            "staff_name": "Ann Lee",
            "kind": "stop",
            "subject": None,
            "fallback": False,
        },
        {
            "id": w.ids["stop_answer"],
            "direction": "out",
            "channel": "sms",
            "status": "sent",
            "at": "2026-03-02T14:00:30-05:00",
            "body": "You have successfully been unsubscribed.",
            "error": None,
            "staff_id": "A1",
            "staff_name": "Ann Lee",
            "kind": "keyword_reply",
            "subject": None,
            "fallback": False,
        },
        {
            "id": w.ids["cancelled"],
            "direction": "out",
            "channel": "sms",
            "status": "skipped",
            "at": "2026-03-02T15:00:00-05:00",
            "body": "Reminder: forms are due today.",
            "error": "cancelled",
            "staff_id": "A1",
            "staff_name": "Ann Lee",
            "kind": "campaign",
            "subject": None,
            "fallback": False,
        },
    ]
    code, data = nudge_json("conversation", "S1")
    assert data["staff"] is None
    assert [(m["direction"], m["channel"], m["status"]) for m in data["messages"]] == [
        ("out", "sms", "delivered"),
        ("out", "sms", "delivered"),
        ("in", "sms", "received"),
        ("out", "sms", "undelivered"),
        ("out", "email", "fallback_email"),
        ("in", "email", "received"),
        ("in", "sms", "received"),
        ("out", "sms", "sent"),
        ("out", "sms", "skipped"),
    ]


def test_an_unknown_student_or_staff_member_is_named_exit_2(cli_db: Path, engine: Engine) -> None:
    world(engine)
    assert nudge("conversation", "S404") == (2, "", "error: no student with SIS id 'S404'\n")
    # A staff member is not a student.
    assert nudge("conversation", "A1") == (2, "", "error: no student with SIS id 'A1'\n")
    assert nudge("conversation", "S1", "--staff", "X9") == (
        2,
        "",
        "error: no staff member with SIS id 'X9'\n",
    )
    assert nudge_json("conversation", "S404") == (2, {"error": "no student with SIS id 'S404'"})
