"""CLI mistakes are refused naming the mistake; what people read is in the institution's zone.

Every command runs from a temporary working folder (``cli_db``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from models.messaging import Campaign, InboundMessage, Message
from models.people import Person
from nudge.cli.main import app
from tests.helpers import PEOPLE_COLUMNS, phone, staff, student, write_extract

COLUMNS = [*PEOPLE_COLUMNS, "title"]

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


@pytest.fixture
def college(cli_db: Path) -> Path:
    """Staff A1 (Texting from the SIS, a Success Coach), inactive staff B9 holding Dean,
    student S1 with a mobile number and S2 with none."""
    source = write_extract(
        cli_db / "extract",
        [
            staff("A1", first_name="Ann", last_name="Lee", title="Success Coach"),
            staff("B9", roles="Dean", status="inactive"),
            student("S1"),
            student("S2"),
        ],
        [phone("S1", "212-555-0101")],
        people_columns=COLUMNS,
    )
    code, out, err = nudge("sync", "--source", source, "--no-engine")
    assert code == 0, out + err
    return cli_db


# --- --at in the past ----------------------------------------------------------------------


def test_send_at_a_past_time_is_refused_not_sent_at_once(college: Path, engine: Engine) -> None:
    args = ["send", "--sender", "A1", "--message", "Hi {first_name}", "--student", "S1"]
    code, out, err = nudge(*args, "--at", "2020-01-01T09:30")
    assert (code, out) == (2, "")
    assert re.fullmatch(
        r"error: --at '2020-01-01T09:30' is in the past \(2020-01-01 09:30 EST; it is now "
        r"\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T\): leave --at out to send now\n",
        err,
    ), err
    code, data = nudge_json(*args, "--at", "2020-07-01T12:00+00:00")
    assert code == 2 and data["error"].startswith(
        "--at '2020-07-01T12:00+00:00' is in the past (2020-07-01 08:00 EDT; it is now"
    )
    with Session(engine) as s:
        assert s.exec(select(Campaign)).all() == []  # nothing planned, nothing sent


# --- roles grant -----------------------------------------------------------------------------


def test_roles_grant_refuses_a_misspelt_role_naming_the_closest_ones(college: Path) -> None:
    code, out, err = nudge("roles", "grant", "A1", "Textng")
    assert (code, out) == (2, "")
    assert err == (
        "error: unknown role 'Textng' (did you mean 'Texting'?): nobody holds it and "
        "permitted_roles does not name it; check the spelling, or pass --create to start "
        "a new role\n"
    )
    code, data = nudge_json("roles", "grant", "A1", "Textng")
    assert code == 2 and data["known"] == ["Dean", "Texting"]
    assert nudge_json("roles", "list")[1]["grants"] == []  # nothing was granted

    # A known role in another spelling is granted under the spelling in use.
    assert nudge("roles", "grant", "A1", " texting ") == (0, "A1 now holds Texting\n", "")
    assert nudge("roles", "grant", "A1", "Texting") == (0, "A1 already held Texting\n", "")
    # A new role needs --create, and says it does not allow texting yet.
    assert nudge("roles", "grant", "A1", "Outreach", "--create") == (
        0,
        "A1 now holds Outreach (not a permitted role: its holders may not text yet)\n",
        "",
    )
    grants = nudge_json("roles", "list")[1]["grants"]
    assert grants == [{"staff": "A1", "role": "Outreach"}, {"staff": "A1", "role": "Texting"}]


def test_roles_grant_knows_dynamic_and_permitted_roles(college: Path) -> None:
    assert nudge("roles", "define", "Coaches", "--title-contains", "coach")[0] == 0
    assert nudge("roles", "grant", "A1", "coaches")[1] == (
        "A1 now holds Coaches (not a permitted role: its holders may not text yet)\n"
    )
    # Roles the configuration permits are known even before anyone holds them.
    assert nudge("config", "set", "permitted_roles", "Texting,Advising", "--force")[0] == 0
    assert nudge("roles", "grant", "A1", "Advising")[1] == "A1 now holds Advising\n"


# --- config set permitted_roles ------------------------------------------------------------


def test_permitted_roles_nobody_holds_are_refused_unless_forced(college: Path) -> None:
    code, out, err = nudge("config", "set", "permitted_roles", "Textng")
    assert (code, out) == (2, "")
    assert err == (
        "error: no active staff member holds 'Textng' (did you mean 'Texting'?), so nobody "
        "could start a campaign: grant it first (`nudge roles grant STAFF ROLE --create` or "
        "`nudge roles define`), or pass --force to set it anyway\n"
    )
    # One held role and one nobody holds: still refused, naming the one.
    code, out, err = nudge("config", "set", "permitted_roles", "Texting,Dean")
    assert code == 2 and err.startswith(
        "error: no active staff member holds 'Dean', so it lets nobody text:"
    )  # B9 holds Dean, but B9 is inactive
    code, out, err = nudge("config", "set", "permitted_roles", "")
    assert (code, err) == (
        2,
        "error: permitted_roles is empty, so nobody could start a campaign: "
        "pass --force to set it anyway\n",
    )
    assert nudge_json("config", "show")[1]["permitted_roles"] == ["Texting"]  # unchanged

    code, out, err = nudge("config", "set", "permitted_roles", "Textng", "--force")
    assert (code, out) == (0, "permitted_roles = Textng\n")
    assert err == (
        "warning: no active staff member holds 'Textng' (did you mean 'Texting'?), so nobody "
        "could start a campaign\n"
    )
    code, data = nudge_json("config", "set", "permitted_roles", "Texting,textng", "--force")
    assert code == 0 and data["value"] == ["Texting", "textng"]
    assert data["warnings"] == [
        "no active staff member holds 'textng' (did you mean 'Texting'?), so it lets nobody text"
    ]
    # Roles that are held pass without a word: from the SIS, a grant, a dynamic role.
    nudge("roles", "grant", "A1", "Outreach", "--create")
    nudge("roles", "define", "Coaches", "--title-contains", "coach")
    assert nudge("config", "set", "permitted_roles", "texting, Outreach, COACHES") == (
        0,
        "permitted_roles = texting,Outreach,COACHES\n",
        "",
    )
    # A dynamic role that matches no active staff member is held by nobody.
    nudge("roles", "define", "Deans", "--department", "Dean's Office")
    code, _out, err = nudge("config", "set", "permitted_roles", "Deans")
    assert code == 2 and "holds 'Deans', so nobody could start a campaign" in err


# --- campaigns cancel -------------------------------------------------------------------------


def _schedule(engine: Engine) -> int:
    nudge("config", "set", "quiet_hours", "off")
    code, data = nudge_json(
        "send", "--sender", "A1", "--message", "Hi {first_name}", "--student", "S1",
        "--student", "S2", "--at", "2099-03-01T09:30",
    )  # fmt: skip
    assert (code, data["status"]) == (0, "scheduled"), data
    return int(data["campaign_id"])


def _statuses(engine: Engine, campaign_id: int) -> list[tuple[str, str, str | None]]:
    with Session(engine) as s:
        rows = s.exec(
            select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)  # type: ignore[arg-type]
        ).all()
        return [(m.kind, m.status, m.reason) for m in rows]


def _set_status(engine: Engine, campaign_id: int, status: str) -> None:
    with Session(engine) as s:
        table = Campaign.__table__  # type: ignore[attr-defined]
        s.execute(update(table).where(table.c.id == campaign_id).values(status=status))
        s.commit()


def test_a_stuck_sending_campaign_can_be_cancelled(college: Path, engine: Engine) -> None:
    campaign_id = _schedule(engine)
    _set_status(engine, campaign_id, "sending")  # a worker died: nothing left to send it
    with Session(engine) as s:  # ... and one text was in its hands
        table = Message.__table__  # type: ignore[attr-defined]
        in_hand = s.exec(
            select(Message).where(Message.campaign_id == campaign_id, Message.kind == "campaign")
        ).first()
        assert in_hand is not None
        s.execute(update(table).where(table.c.id == in_hand.id).values(status="sending"))
        s.commit()

    code, out, err = nudge("campaigns", "cancel", str(campaign_id))
    assert (code, err) == (0, "")
    assert out == (
        f"campaign {campaign_id} cancelled (was sending): 2 message(s) not sent\n"
        "  1 message(s) were already being handed to the provider and cannot be recalled: "
        f"they finish as usual (see `nudge campaigns show {campaign_id}`)\n"
    )
    statuses = _statuses(engine, campaign_id)
    assert sorted(s for _k, s, _r in statuses) == ["sending", "skipped", "skipped"]
    assert {r for _k, s, r in statuses if s == "skipped"} == {"cancelled"}
    code, data = nudge_json("campaigns", "show", str(campaign_id))
    assert data["status"] == "cancelled"

    code, out, err = nudge("campaigns", "cancel", str(campaign_id))
    assert (code, err) == (
        1,
        f"error: campaign #{campaign_id} is cancelled: only a scheduled, sending or stopped "
        "campaign can be cancelled\n",
    )
    assert nudge("campaigns", "cancel", "999")[::2] == (1, "error: no campaign #999\n")


def test_stopped_and_scheduled_campaigns_can_be_cancelled(college: Path, engine: Engine) -> None:
    stopped = _schedule(engine)
    _set_status(engine, stopped, "stopped")
    code, data = nudge_json("campaigns", "cancel", str(stopped))
    assert (code, data) == (
        0,
        {
            "campaign_id": stopped,
            "status": "cancelled",
            "was": "stopped",
            "skipped": 3,
            "in_flight": 0,
            "unknown_emails": 0,
        },
    )
    scheduled = _schedule(engine)
    assert nudge("campaigns", "cancel", str(scheduled)) == (
        0,
        f"campaign {scheduled} cancelled (was scheduled): 3 message(s) not sent\n",
        "",
    )
    assert {s for _k, s, _r in _statuses(engine, scheduled)} == {"skipped"}
    nudge("dispatch")  # a due time long past changes nothing for a cancelled campaign
    with Session(engine) as s:
        assert s.get(Campaign, scheduled).status == "cancelled"  # type: ignore[union-attr]


# --- campaigns list / show ------------------------------------------------------------------


def test_campaigns_list_and_show_name_sender_send_at_and_reasons(
    college: Path, engine: Engine
) -> None:
    campaign_id = _schedule(engine)
    code, out, err = nudge("campaigns", "list")
    assert (code, err) == (0, "")
    assert out == (
        f"#{campaign_id:<5} scheduled  campaign from Ann Lee (A1), send at 2099-03-01 09:30 "
        "EST: 2 recipients (1 SMS, 1 email, 0 undeliverable)\n"
        "       why: no_sms_number 1, sms_ok 1\n"
        "       Hi {first_name}\n"
    )
    code, data = nudge_json("campaigns", "list")
    [row] = data["campaigns"]
    assert row["sender"] == {"id": "A1", "name": "Ann Lee"}
    assert row["send_at"] == "2099-03-01T09:30:00-05:00"
    assert row["by_reason"] == {"no_sms_number": 1, "sms_ok": 1}

    code, out, err = nudge("campaigns", "show", str(campaign_id))
    lines = out.splitlines()
    assert code == 0 and lines[:2] == [
        f"campaign {campaign_id}: scheduled",
        "  from     Ann Lee (A1)",
    ]
    assert re.fullmatch(
        r"  send at  2099-03-01 09:30 EST \(created \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T by cli\)",
        lines[2],
    ), lines[2]
    assert lines[3:8] == [
        "  message  Hi {first_name}",
        "  recipients 2: 1 SMS, 1 email, 0 undeliverable; 0 opt-in notices sent",
        "  email:planned            1",
        "  sms:planned              1",
        "  why:",
    ]
    assert lines[8:10] == ["    no_sms_number          1", "    sms_ok                 1"]
    code, data = nudge_json("campaigns", "show", str(campaign_id))
    assert (data["sender"], data["send_at"]) == (
        {"id": "A1", "name": "Ann Lee"},
        "2099-03-01T09:30:00-05:00",
    )
    assert data["result"]["by_reason"] == {"no_sms_number": 1, "sms_ok": 1}


# --- sync-runs show ------------------------------------------------------------------------------


def test_sync_runs_show_gives_the_figures_not_only_quarantined_rows(college: Path) -> None:
    code, out, err = nudge("sync-runs", "show", "1")
    lines = out.splitlines()
    assert (code, err, lines[:2]) == (
        0,
        "",
        ["sync #1 succeeded", f"  source:  csv:{college}/extract"],
    )
    assert re.fullmatch(
        r"  started: \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T, finished: \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T",
        lines[2],
    ), lines[2]
    assert lines[3:] == [
        "  people:   4 created, 0 updated, 0 unchanged, 0 deactivated",
        "  phones:   1 valid, 0 invalid, 1 added, 0 removed, 1 parsed this run",
        "  students: 1 with an SMS number, 0 left without one, 1 opted in",
        "  flagged:  0 landlines coded as mobile, 0 numbers shared by several students, "
        "0 unknown type codes",
        "  quarantined rows: 0",
    ]
    code, data = nudge_json("sync-runs", "show", "1")
    assert data["stats"]["people_created"] == 4 and data["forced"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+-0[45]:00", data["started_at"])
    code, out, _err = nudge("sync-runs", "list")
    assert re.fullmatch(r"#1 succeeded \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T csv:\S+\n", out), out


def test_sync_runs_show_of_a_refused_sync_says_why_and_that_nothing_changed(
    college: Path,
) -> None:
    source = write_extract(college / "truncated", [student("S1")], [])
    code, _out, _err = nudge("sync", "--source", source, "--no-engine")
    assert code == 3
    code, out, _err = nudge("sync-runs", "show", "2")
    lines = out.splitlines()
    assert lines[0] == "sync #2 refused"
    assert lines[3].startswith("  error:   ")
    assert lines[4:] == ["  nothing was changed by this run", "  quarantined rows: 0"]


# --- times in the institution's zone ---------------------------------------------------------


def test_inbox_and_consent_show_times_in_the_institution_zone(
    college: Path, engine: Engine
) -> None:
    with Session(engine) as s:
        people = {p.sis_id: p.id for p in s.exec(select(Person)).all()}
        s.add(
            InboundMessage(
                provider_sid="SM" + "1" * 32,
                from_e164="+12125550101",
                to_e164="+12125559999",
                body="Can I switch sections?",
                received_at=datetime(2026, 11, 27, 19, 5, tzinfo=UTC),
                person_id=people["S1"],
                staff_person_id=people["A1"],
            )
        )
        s.commit()
    code, out, err = nudge("inbox")
    assert (code, err) == (0, "")
    assert out == (
        "FirstS1 LastS1 (S1) -> A1: 1 unread of 1, last 2026-11-27 14:05 EST\n"
        "    Can I switch sections?\n"
    )
    code, data = nudge_json("inbox")
    assert data["conversations"][0]["last_reply_at"] == "2026-11-27T14:05:00-05:00"

    nudge("config", "set", "timezone", "America/Chicago")
    assert "last 2026-11-27 13:05 CST" in nudge("inbox")[1]

    code, out, _err = nudge("consent", "show", "S1")
    history = out.splitlines()[out.splitlines().index("history:") + 1]
    assert re.match(
        r"  \d{4}-\d\d-\d\d \d\d:\d\d C[SD]T \+1\*{6}0101 institution: opted_in", history
    )


# --- phones override -------------------------------------------------------------------------


def test_phones_override_adds_a_number_for_a_student_who_has_none(college: Path) -> None:
    assert nudge_json("phones", "show", "S2")[1]["sms_number"] is None
    code, out, err = nudge("phones", "override", "S2", "(212) 555-0199", "--allow")
    assert (code, out, err) == (
        0,
        "added as a manual number (type OVERRIDE, kept by every sync); "
        "SMS number now +1******0199\n",
        "",
    )
    shown = nudge_json("phones", "show", "S2", "--reveal")[1]
    assert shown["sms_number"] == "+12125550199"
    [row] = shown["phones"]
    assert (row["type_code"], row["kind"], row["sms_allowed"], row["present"]) == (
        "OVERRIDE",
        "mobile",
        True,
        True,
    )
    # Allowing it again changes nothing; a second manual number becomes the one texted.
    assert nudge_json("phones", "override", "S2", "212-555-0199", "--allow")[1]["rows"] == 1
    added = nudge_json("phones", "override", "S2", "212 555 0177", "--allow")[1]
    assert (added["added"], added["sms_number"]) == (True, "+1******0177")
    # --clear takes a manual number back.
    code, out, _err = nudge("phones", "override", "S2", "2125550177", "--clear")
    assert out == "manual number removed; SMS number now +1******0199\n"


def test_phones_override_refuses_what_it_cannot_add(college: Path) -> None:
    assert nudge("phones", "override", "S2", "555-01", "--allow") == (
        2,
        "",
        "error: ***5501 is not a valid phone number (too_short); nothing was added to S2\n",
    )
    assert nudge("phones", "override", "S2", "212-555-0188", "--deny") == (
        1,
        "",
        "error: S2 has no number matching ***0188; see `nudge phones show S2` "
        "(--allow adds a number)\n",
    )
    assert nudge("phones", "override", "S2", "212-555-0188")[0] == 2  # no --allow/--deny/--clear
    assert nudge("phones", "override", "NOBODY", "212-555-0188", "--allow")[::2] == (
        1,
        "error: no person with SIS id 'NOBODY'\n",
    )


def test_a_manual_number_survives_a_sync_that_leaves_the_student_unchanged(
    college: Path,
) -> None:
    nudge("phones", "override", "S2", "(212) 555-0199", "--allow")
    code, _out, _err = nudge("sync", "--source", f"csv:{college}/extract", "--no-engine")
    assert code == 0
    assert nudge_json("phones", "show", "S2")[1]["sms_number"] == "+1******0199"


def test_a_manual_number_survives_a_sync_that_changes_the_student(college: Path) -> None:
    nudge("phones", "override", "S2", "(212) 555-0199", "--allow")
    source = write_extract(
        college / "changed",
        [
            staff("A1", first_name="Ann", last_name="Lee", title="Success Coach"),
            staff("B9", roles="Dean", status="inactive"),
            student("S1"),
            student("S2", risk_level="high"),
        ],
        [phone("S1", "212-555-0101")],
        people_columns=COLUMNS,
    )
    code, out, err = nudge("sync", "--source", source, "--no-engine")
    assert code == 0, out + err
    shown = nudge_json("phones", "show", "S2")[1]
    assert shown["sms_number"] == "+1******0199"
    assert shown["phones"][0]["present"] is True
