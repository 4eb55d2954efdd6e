"""``nudge campaigns stats``, ``nudge staff stats`` and ``nudge digest``: the figures of
models/outcomes.py as JSON and as a short table, on SQLite and PostgreSQL (``cli_db``)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from models.types import utcnow
from nudge.cli.main import app
from tests.models.test_outcomes import T0, campaign, inbound, out, outreach, person, reply

runner = CliRunner()


def nudge(*args: str) -> tuple[int, str, str]:
    """Run ``nudge ARGS``: exit code, stdout, stderr."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def nudge_json(*args: str) -> tuple[int, dict[str, Any]]:
    """Run ``nudge ARGS --json``: exit code and the one JSON object printed."""
    code, stdout, _err = nudge(*args, "--json")
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout
    return code, json.loads(lines[0])


def test_campaign_stats_as_json_and_as_a_table(cli_db: Path, engine: Engine) -> None:
    with Session(engine) as s:
        world = outreach(s)
    code, data = nudge_json("campaigns", "stats", str(world.first))
    assert code == 0
    picked = {
        k: data[k]
        for k in (
            "recipients",
            "held_out",
            "delivered_pct",
            "failed_by_code",
            "reply_pct",
            "opt_out_pct",
            "median_reply_minutes",
            "first_reply_within_1h_pct",
        )
    }
    assert picked == {
        "recipients": 6,
        "held_out": 1,
        "delivered_pct": 50.0,
        "failed_by_code": {"30003": 1, "none": 1},
        "reply_pct": 50.0,
        "opt_out_pct": 33.3,
        "median_reply_minutes": 30.0,
        "first_reply_within_1h_pct": 66.7,
    }
    assert data["first_sent_at"] == "2026-03-02T10:00:00-05:00"  # the institution's zone
    code, shown, _err = nudge("campaigns", "stats", str(world.first))
    assert code == 0
    assert shown.splitlines() == [
        f"campaign {world.first} (campaign, completed): outcomes",
        "  first sent           2026-03-02 10:00 EST",
        "  recipients           6 (1 held out)",
        "  SMS / email / none   4 / 1 / 1",
        "  delivered            50.0% of 4 SMS handed to Twilio",
        "  not delivered        30003: 1, none: 1",
        "  replied              50.0% (3 students)",
        "  opted out            33.3% (2 students)",
        "  median first reply   30.0 min (66.7% within an hour)",
    ]


def test_an_unknown_campaign_is_a_clear_error_exit_2(cli_db: Path) -> None:
    assert nudge("campaigns", "stats", "999")[::2] == (2, "error: no campaign #999\n")
    assert nudge_json("campaigns", "stats", "999") == (2, {"error": "no campaign #999"})


def arrange_staff(engine: Engine) -> None:
    """Ann texted S1 and S2 two hours ago; S1 answered 90 minutes ago and Ann replied 30
    minutes later; S2 texted 30 minutes ago (not answered yet) and ten days ago (never
    answered: past its business day)."""
    now = utcnow()

    def ago(minutes: float) -> float:  # the helpers date rows in minutes after T0
        return (now - T0).total_seconds() / 60 - minutes

    with Session(engine) as s:
        ann = person(s, "A1", "staff", "Ann")
        s1, s2 = person(s, "S1"), person(s, "S2")
        texts = campaign(s, ann)
        for student in (s1, s2):
            out(s, texts, student, sent_at=now - timedelta(hours=2))
        inbound(s, s1, ann, ago(90))
        reply(s, ann, s1, ago(60))
        inbound(s, s2, ann, ago(30))
        inbound(s, s2, ann, ago(10 * 24 * 60))
        s.commit()


@pytest.mark.parametrize("days", [7, 14])
def test_staff_stats_over_the_last_days(cli_db: Path, engine: Engine, days: int) -> None:
    arrange_staff(engine)
    code, data = nudge_json("staff", "stats", "--days", str(days))
    assert code == 0 and data["days"] == days
    (ann,) = data["staff"]
    old = days == 14  # the reply of ten days ago is in the window
    assert {k: v for k, v in ann.items() if k != "person_id"} == {
        "staff_id": "A1",
        "name": "Ann Test",
        "texts_sent": 3,
        "students_replied": 2,
        "replies": 3 if old else 2,
        "answered": 1,
        "unanswered": 2 if old else 1,
        "median_answer_minutes": 30.0,
        "answered_within_business_day_pct": 50.0 if old else 100.0,
        "overdue": 1 if old else 0,
    }
    code, shown, _err = nudge("staff", "stats", "--days", str(days))
    assert code == 0
    lines = shown.splitlines()
    assert lines[1].split() == [
        "staff",
        "member",
        "texts",
        "replies",
        "students",
        "unanswered",
        "median",
        "answer",
        "within",
        "1",
        "business",
        "day",
    ]
    assert lines[2].split() == (
        ["Ann", "Test", "(A1)", "3", "3", "2", "2", "30.0", "min", "50.0%"]
        if old
        else ["Ann", "Test", "(A1)", "3", "2", "2", "1", "30.0", "min", "100.0%"]
    )


def test_staff_stats_with_nobody_to_show(cli_db: Path) -> None:
    code, data = nudge_json("staff", "stats")
    assert (code, data["days"], data["staff"]) == (0, 7, [])
    assert nudge("staff", "stats", "--days", "3")[1] == (
        "no staff member texted or heard from a student in the last 3 day(s)\n"
    )
    assert nudge("staff", "stats", "--days", "0")[0] == 2  # at least one day


def test_digest_writes_the_page_once_a_day_and_emails_nobody_unconfigured(
    cli_db: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nudge.settings import get_settings

    monkeypatch.setenv("NUDGE_REPORT_DIR", str(cli_db / "reports"))
    get_settings.cache_clear()
    arrange_staff(engine)
    code, data = nudge_json("digest")
    assert code == 0
    page = Path(data["page"])
    assert page.parent == cli_db / "reports" / "outreach" and page.suffix == ".html"
    html = page.read_text(encoding="utf-8")
    assert "<svg" in html and 'data-staff="A1"' in html
    assert (data["emails_queued"], data["emails_sent"], data["artifact"]) == (0, 0, False)
    assert data["totals"]["campaigns"] == 1 and data["totals"]["recipients"] == 2
    code, shown, _err = nudge("digest")
    assert code == 0 and f"  page: {page}" in shown.splitlines()
