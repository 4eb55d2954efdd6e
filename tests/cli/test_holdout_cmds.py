"""``--holdout`` / ``--holdout-seed`` of ``nudge send`` and ``preview``, ``campaigns show``,
``nudge campaigns outcome`` and the send-campaign form's holdout fields: exact output and
refusals (exit 2). On SQLite and PostgreSQL (``cli_db``).

The students have no phone, so every message is an email written to the outbox folder: no
emulator is needed to send, and the messaged group is everyone who got one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import fisher_exact
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session
from statsmodels.stats.proportion import confint_proportions_2indep
from typer.testing import CliRunner

from domain.campaign import CampaignRequest
from domain.holdout import draw_holdout
from models.messaging import Campaign, Message
from models.people import Person
from nudge.cli.main import app
from tests.helpers import staff, student, write_extract

PROGRAMS = ("Nursing", "Biology", "Welding")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(*args, "--json")
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return code, json.loads(lines[0])


@pytest.fixture
def sync(cli_db: Path) -> Callable[..., list[tuple[str, str]]]:
    """Sync staff T1 (Texting) and ``n`` students (no phone: email only) in three programs,
    tagged by ``tags(i)``; returns the (sis_id, program) pairs."""

    def build(n: int, tags: Callable[[int], str] = lambda i: "first-gen") -> list[tuple[str, str]]:
        people = [staff("T1", first_name="Tess", last_name="Adams", roles="Texting")]
        pairs = []
        for i in range(n):
            program = PROGRAMS[i % 3]
            people.append(student(f"S{i}", advisor_id="T1", program=program, tags=tags(i)))
            pairs.append((f"S{i}", program))
        source = write_extract(cli_db / "sis", people, [])
        code, out, err = run("sync", "--source", source, "--no-engine", "--json")
        assert code == 0, (out, err)
        return pairs

    return build


def held_out(engine: Engine, campaign_id: int) -> set[str]:
    with Session(engine) as s:
        return set(
            s.execute(
                select(Person.sis_id)
                .join(Message, Message.person_id == Person.id)  # type: ignore[arg-type]
                .where(Message.campaign_id == campaign_id, Message.status == "held_out")  # type: ignore[arg-type]
            ).scalars()
        )


SEND = ("--sender", "T1", "--message", "Hi {first_name}, registration opens Monday.")


def test_preview_and_send_hold_out_the_same_students_and_say_so(
    sync: Callable[..., list[tuple[str, str]]], engine: Engine
) -> None:
    pairs = sync(40)
    code, preview = run_json("preview", *SEND, "--caseload", "T1", "--holdout", "20")
    assert code == 0
    assert (preview["campaign_id"], preview["recipients"], preview["email"]) == (None, 32, 32)
    assert (preview["held_out"], preview["holdout_pct"]) == (8, 20.0)
    seed = preview["holdout_seed"]
    derived = CampaignRequest(
        sender_id="T1", message=SEND[3], audience={"caseload": ["T1"]}
    ).holdout_seed_used()
    assert seed == derived

    code, out, _ = run("preview", *SEND, "--caseload", "T1", "--holdout", "20")
    assert code == 0
    assert f"  held out 8 (20% at random, seed {seed}): they get nothing\n" in out

    code, sent = run_json("send", *SEND, "--caseload", "T1", "--holdout", "20")
    assert code == 0
    assert (sent["status"], sent["recipients"], sent["held_out"], sent["holdout_seed"]) == (
        "completed",
        32,
        8,
        seed,
    )
    assert sent["result"]["held_out"] == 8 and sent["result"]["recipients"] == 32
    assert held_out(engine, sent["campaign_id"]) == draw_holdout(pairs, 20, seed)

    # --holdout-seed: another draw, stored on the campaign.
    code, other = run_json(
        "send", *SEND, "--caseload", "T1", "--holdout", "20", "--holdout-seed", "12345"
    )
    assert (code, other["held_out"], other["holdout_seed"]) == (0, 8, 12345)
    assert held_out(engine, other["campaign_id"]) == draw_holdout(pairs, 20, 12345)
    with Session(engine) as s:
        stored = s.execute(
            select(Campaign.holdout_pct, Campaign.holdout_seed).order_by(Campaign.id)  # type: ignore[arg-type]
        ).all()
    assert [tuple(r) for r in stored] == [(20.0, seed), (20.0, 12345)]


def test_campaigns_show_reports_the_held_out_students(
    sync: Callable[..., list[tuple[str, str]]],
) -> None:
    sync(10)
    code, sent = run_json(
        "send", *SEND, "--caseload", "T1", "--holdout", "30", "--holdout-seed", "4"
    )
    assert (code, sent["held_out"]) == (0, 3)
    code, shown = run_json("campaigns", "show", str(sent["campaign_id"]))
    assert code == 0
    assert (shown["holdout_pct"], shown["holdout_seed"]) == (30.0, 4)
    assert shown["result"]["held_out"] == 3
    assert shown["result"]["recipients"] == 7
    assert shown["result"]["by_status"] == {"email:sent": 7}
    code, out, _ = run("campaigns", "show", str(sent["campaign_id"]))
    assert code == 0
    assert "  recipients 7: 0 SMS, 7 email, 0 undeliverable; 0 opt-in notices sent\n" in out
    assert "  held out 3 (30% at random, seed 4): sent nothing\n" in out


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param(
            ["--holdout", "60"],
            "--holdout: a holdout of 60% would keep more students out than it messages: "
            "choose at most 50%",
            id="more-than-half",
        ),
        pytest.param(
            ["--holdout", "-1"],
            "--holdout: a holdout of -1.0% is not a share of the audience: choose 0 to 50",
            id="negative",
        ),
        pytest.param(
            ["--holdout", "10", "--holdout-seed", "-3"],
            "--holdout-seed: Input should be greater than or equal to 0",
            id="negative-seed",
        ),
    ],
)
@pytest.mark.parametrize("command", ["send", "preview"])
def test_a_bad_holdout_exits_2_naming_the_option(
    sync: Callable[..., list[tuple[str, str]]], command: str, options: list[str], error: str
) -> None:
    sync(3)
    code, data = run_json(command, *SEND, "--caseload", "T1", *options)
    assert (code, data) == (2, {"error": error})
    code, out, err = run(command, *SEND, "--caseload", "T1", *options)
    assert (code, out, err) == (2, "", f"error: {error}\n")


def _outcome(campaign_id: int, *args: str) -> tuple[int, dict[str, Any]]:
    return run_json("campaigns", "outcome", str(campaign_id), *args)


def test_outcome_matches_a_hand_computation(
    sync: Callable[..., list[tuple[str, str]]], engine: Engine
) -> None:
    pairs = sync(120)
    code, sent = run_json("send", *SEND, "--caseload", "T1", "--holdout", "50")
    assert (code, sent["recipients"], sent["held_out"]) == (0, 60, 60)
    held = held_out(engine, sent["campaign_id"])

    # Later, the SIS says who registered: a known subset of each group.
    def registered(i: int) -> bool:
        return i % 2 == 0 if f"S{i}" not in held else i % 4 == 0

    sync(120, tags=lambda i: "first-gen;registered" if registered(i) else "first-gen")
    code, data = _outcome(sent["campaign_id"], "--field", "tags", "--value", "Registered")
    assert code == 0
    m_with = sum(registered(int(s[1:])) for s, _ in pairs if s not in held)
    h_with = sum(registered(int(s[1:])) for s, _ in pairs if s in held)
    assert data["messaged"] == {"students": 60, "with_value": m_with, "share": m_with / 60}
    assert data["held_out"] == {"students": 60, "with_value": h_with, "share": h_with / 60}
    assert data["difference"] == m_with / 60 - h_with / 60
    low, high = confint_proportions_2indep(m_with, 60, h_with, 60, method="newcomb")
    assert data["interval"] == [float(low), float(high)]
    table = [[m_with, 60 - m_with], [h_with, 60 - h_with]]
    assert data["p_value"] == float(fisher_exact(table).pvalue)
    expected_verdict = (
        "no_detectable_difference"
        if low <= 0 <= high
        else ("messaged_higher" if low > 0 else "messaged_lower")
    )
    assert data["verdict"] == expected_verdict
    assert (data["field"], data["value"], data["holdout_pct"], data["not_reached"]) == (
        "tags",
        "Registered",
        50.0,
        0,
    )
    assert (data["sent_days_ago"], data["after_days"], data["warning"]) == (0, None, None)
    assert data["values_as_of"] >= data["sent_at"]  # ISO times in the same zone
    assert set(data) == {
        "campaign_id",
        "field",
        "value",
        "holdout_pct",
        "holdout_seed",
        "sent_at",
        "sent_days_ago",
        "after_days",
        "values_as_of",
        "warning",
        "messaged",
        "held_out",
        "not_reached",
        "confidence",
        "interval_method",
        "p_value_method",
        "rule",
        "difference",
        "interval",
        "p_value",
        "verdict",
        "too_small_reason",
        "summary",
        "zone",
    }

    code, out, err = run(
        "campaigns", "outcome", str(sent["campaign_id"]), "--field", "tags", "--value", "registered"
    )
    assert (code, err) == (0, "")
    assert f"  messaged   {m_with} of 60 ({100 * m_with / 60:.1f}%)\n" in out
    assert f"  held out   {h_with} of 60 ({100 * h_with / 60:.1f}%)\n" in out
    assert (
        f"  difference {100 * (m_with - h_with) / 60:+.1f} points, 95% interval "
        f"{100 * low:+.1f} to {100 * high:+.1f}, p = {data['p_value']:.3g}\n"
    ) in out

    # --after: refused while too recent, answered once the days have passed.
    code, refused = _outcome(
        sent["campaign_id"], "--field", "tags", "--value", "x", "--after", "14"
    )
    assert code == 2
    assert refused["error"].startswith(
        f"campaign #{sent['campaign_id']} was sent 0 day(s) ago; --after 14 asks for 14: "
        "try again on or after "
    )
    with Session(engine) as s:
        s.execute(
            update(Campaign)
            .where(Campaign.id == sent["campaign_id"])  # type: ignore[arg-type]
            .values(started_at=datetime.now(UTC) - timedelta(days=15))
        )
        s.commit()
    code, later = _outcome(sent["campaign_id"], "--field", "tags", "--value", "x", "--after", "14")
    assert (code, later["sent_days_ago"], later["after_days"]) == (0, 15, 14)


def test_outcome_says_plainly_when_the_groups_are_too_small(
    sync: Callable[..., list[tuple[str, str]]],
) -> None:
    sync(10)
    code, sent = run_json("send", *SEND, "--caseload", "T1", "--holdout", "20")
    assert (code, sent["held_out"]) == (0, 2)
    code, data = _outcome(sent["campaign_id"], "--field", "program", "--value", "nursing")
    assert code == 0
    assert data["verdict"] == "too_small"
    assert data["too_small_reason"] == (
        "the messaged group has 8 student(s); at least 30 in each group are needed"
    )
    code, out, _ = run(
        "campaigns", "outcome", str(sent["campaign_id"]), "--field", "program", "--value", "nursing"
    )
    assert code == 0
    assert "  Too small to tell: the messaged group has 8 student(s); at least 30 in each " in out
    # The last sync ran before the campaign: the values cannot show anything yet.
    assert "  WARNING: the latest SIS sync ran before the campaign was sent" in out


@pytest.mark.parametrize(
    ("args", "error"),
    [
        pytest.param(
            ["99", "--field", "status", "--value", "active"], "no campaign #99", id="no-campaign"
        ),
        pytest.param(
            ["{held}", "--field", "risk_level", "--value", "high"],
            "unknown field 'risk_level': choose status, tags, program",
            id="unknown-field",
        ),
        pytest.param(
            ["{held}", "--field", "tags", "--value", "  "],
            "--value is empty: give the value to look for",
            id="empty-value",
        ),
        pytest.param(
            ["{plain}", "--field", "status", "--value", "active"],
            "campaign #{plain} has no holdout: nobody was kept out to compare with (send with "
            "--holdout PCT, or the form's 'Hold out (%)')",
            id="no-holdout",
        ),
        pytest.param(
            ["{later}", "--field", "status", "--value", "active"],
            "campaign #{later} has not been sent (it is scheduled): there is no outcome yet",
            id="not-sent",
        ),
    ],
)
def test_outcome_refusals_exit_2_with_a_plain_reason(
    sync: Callable[..., list[tuple[str, str]]], args: list[str], error: str
) -> None:
    sync(4)
    ids = {
        "held": run_json("send", *SEND, "--caseload", "T1", "--holdout", "25")[1]["campaign_id"],
        "plain": run_json("send", *SEND, "--caseload", "T1")[1]["campaign_id"],
    }
    at = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="minutes")
    ids["later"] = run_json("send", *SEND, "--caseload", "T1", "--holdout", "25", "--at", at)[1][
        "campaign_id"
    ]
    argv = [a.format(**ids) for a in args]
    code, data = run_json("campaigns", "outcome", *argv)
    assert (code, data) == (2, {"error": error.format(**ids)})
    code, out, err = run("campaigns", "outcome", *argv)
    assert (code, out, err) == (2, "", f"error: {error.format(**ids)}\n")


def test_send_campaign_form_shows_the_holdout_fields_and_names_them_in_refusals() -> None:
    from prefect.utilities.callables import parameter_schema

    from flows.send_campaign import send_campaign
    from tasks.campaign_form import CampaignRefused, checked_request

    schema = parameter_schema(send_campaign.fn).model_dump_for_openapi()
    fields = schema["definitions"]["CampaignRequest"]["properties"]
    pct, seed = fields["holdout_pct"], fields["holdout_seed"]
    assert (pct["title"], pct["type"], pct["default"]) == ("Hold out (%)", "number", 0)
    assert (pct["minimum"], pct["maximum"]) == (0, 50.0)
    assert "randomized control group" in pct["description"]
    assert (seed["title"], seed["type"], seed["default"]) == ("Holdout seed", "integer", None)
    assert (seed["minimum"], seed["maximum"]) == (0, 2**31 - 1)
    assert list(fields) == [
        "sender",
        "message",
        "audience",
        "send_at",
        "holdout_pct",
        "holdout_seed",
        "dry_run",
    ]
    with pytest.raises(CampaignRefused) as refused:
        checked_request({"sender": "T1", "message": "Hi", "holdout_pct": 75})
    assert str(refused.value) == (
        "the campaign's fields are not valid: Hold out (%): a holdout of 75% would keep more "
        "students out than it messages: choose at most 50%"
    )
    ok = checked_request({"sender": "T1", "message": "Hi", "holdout_pct": 20, "holdout_seed": 3})
    assert (ok.holdout_pct, ok.holdout_seed) == (20, 3)
