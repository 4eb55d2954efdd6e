"""A reply Twilio lists 10 minutes late, end to end: the emulator, the real SDK, real SMTP,
both databases.

The emulator's ``POST /sandbox/inbound`` takes ``SentAgo`` (seconds): the reply's
``date_sent`` is that far back, but it is listable only from now on, as Twilio users see
replies show up in the list 10-15 minutes late. The list is ordered by ``date_sent``, newest
first (as documented), so a poll whose cursor newer traffic has moved stops before it. What
staff receive is counted at the SMTP server, not in our tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from flows.reconcile_replies import SWEEP_KEYS, run_sweep
from models.leases import read_cursor
from tasks.replies import CURSOR
from tests.e2e.test_replies import College, make_college, text_of

__all__ = ["make_college"]  # the fixture, shared with test_replies.py

LATE_S = 600


def text_late(world: College, student: int, body: str, sent_ago: int = LATE_S) -> str:
    """The student texted ``sent_ago`` seconds ago; Twilio lists it only from now."""
    response = httpx.post(
        f"{world.emulator.base_url}/sandbox/inbound",
        json={"From": world.students[student], "To": world.t1, "Body": body, "SentAgo": sent_ago},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["message"]["sid"])


def emails_about(world: College, sis_id: str) -> list[Any]:
    """The emails the SMTP server accepted that tell staff about ``sis_id``'s replies."""
    return [m for m in world.smtp.messages if f"(student id {sis_id})" in text_of(m)]


def cursor(world: College) -> Any:
    with Session(world.env.engine) as s:
        return read_cursor(session=s, name=CURSOR)


def stored(world: College) -> set[str]:
    return {row.provider_sid for row in world.inbound()}


def test_a_reply_listed_10_minutes_late_is_stored_by_the_sweep_and_emailed_once(
    make_college: Callable[..., College],
) -> None:
    world = make_college(3)
    world.text(0, "Thanks, see you Monday")
    assert world.poll()["new"] == 1
    late = text_late(world, 1, "Can I come by at 3 instead?")
    world.text(2, "Is the form due Friday?")
    # Newer traffic moves the cursor: the polls stop before the late reply, every time.
    polled = [world.poll(), world.poll()]
    assert [p["new"] for p in polled] == [1, 0]
    assert late not in stored(world) and emails_about(world, "S1") == []
    before = cursor(world)

    swept = run_sweep(world.settings, env=world.env, hours=2, lease_wait_s=0)
    assert set(SWEEP_KEYS) <= set(swept) and swept["errors"] == []
    assert (swept["new"], swept["late_found"], swept["already_stored"]) == (1, 1, 2)
    assert LATE_S <= swept["max_lag_s"] < LATE_S + 120
    assert late in stored(world)
    assert cursor(world) == before  # the poll's cursor is the poll's
    # T1 gets exactly one email about it, at the server.
    (mail,) = emails_about(world, "S1")
    assert "Can I come by at 3 instead?" in text_of(mail) and mail["To"] == "t1@college.edu"
    assert swept["notifications_sent"] == 1 and len(world.smtp.messages) == 3

    again = run_sweep(world.settings, env=world.env, hours=48, lease_wait_s=0)
    assert (again["new"], again["late_found"], again["notifications_sent"]) == (0, 0, 0)
    assert again["already_stored"] == 3
    assert world.poll()["new"] == 0
    assert len(emails_about(world, "S1")) == 1 and len(world.smtp.messages) == 3


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_nudge_poll_sweep_acts_on_a_late_stop(
    make_college: Callable[..., College], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``nudge poll --sweep --json``: a STOP listed late still opts the student out, once; a
    keyword is not emailed; ``--hours`` without ``--sweep`` is refused."""
    from nudge.cli.main import app
    from nudge.settings import get_settings

    world = make_college(2)
    world.text(0, "ok")
    world.poll()
    late = text_late(world, 1, "STOP", sent_ago=900)
    world.text(0, "thanks")
    assert world.poll()["new"] == 1 and late not in stored(world)
    s = world.settings
    for key, value in {
        "NUDGE_DATABASE_URL": s.database_url,
        "NUDGE_TWILIO_BASE_URL": str(s.twilio_base_url),
        "NUDGE_SMTP_HOST": str(s.smtp_host),
        "NUDGE_SMTP_PORT": str(s.smtp_port),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, ["poll", "--sweep", "--hours", "1", "--json"])
        refused = CliRunner().invoke(app, ["poll", "--hours", "1"])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert (result["late_found"], result["opt_outs"], result["notifications_sent"]) == (1, 1, 0)
    assert 900 <= result["max_lag_s"] < 1020 and result["hours"] == 1
    assert world.consent(world.students[1]) == ("opted_out", "stop")
    assert emails_about(world, "S1") == []
    assert refused.exit_code == 1 and "--hours goes with --sweep" in refused.output
