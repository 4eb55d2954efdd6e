"""Did the nudge work? Campaign outcomes end to end (the emulator, the real send path and the
replies poll, on SQLite and PostgreSQL), the weekly digest (page, real SMTP, once per week)
and the Prefect artifacts (outcome tables refreshed only on change, the digest's markdown).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from adapters.mail.folder import OutboxMailer
from flows.outreach_digest import run_digest
from models.messaging import Campaign, Message
from models.outcomes import campaign_stats
from nudge.settings import Settings
from tasks.env import Env
from tasks.outcomes import iso_week, outcome_key, publish_outcomes
from tests.e2e.conftest import college, live_settings, make_env
from tests.e2e.test_replies import College, make_college
from tests.models.test_outcomes import T0, inbound, outreach

__all__ = ["college", "live_settings", "make_college", "make_env"]  # fixtures, shared

ADMINS = ["lead@college.edu", "registrar@college.edu"]
DIGEST_SUBJECT = "[nudge] Outreach digest"


@pytest.fixture
def world(make_college: Callable[..., College], emulator: Any) -> College:
    """T1 texted S0..S5 through the real send path (S3's phone is unreachable: 30003); ten
    minutes later S0 and S1 answer, S2 texts STOP, S0 writes again ten minutes after that;
    the poll stores them and refreshes the delivery statuses."""
    emulator.control(recipient_errors={"+12125551003": 30003})
    world = make_college(6, texted=True)
    world.emulator.advance(600)
    world.text(0, "Thanks, I'll send it today")
    world.text(1, "Where is the form?")
    world.text(2, "STOP")
    world.emulator.advance(600)
    world.text(0, "Sent!")
    polled = world.poll()
    assert (polled["errors"], polled["replies"], polled["opt_outs"]) == ([], 3, 1)
    return world


def campaign_id(world: College) -> int:
    with Session(world.env.engine) as s:
        found = s.execute(select(col(Campaign.id)).where(col(Campaign.kind) == "campaign"))
        return int(found.scalar_one())


def test_a_campaign_sent_and_answered_end_to_end(world: College) -> None:
    with Session(world.env.engine) as s:
        stats = campaign_stats(session=s, campaign_id=campaign_id(world))
        statuses = sorted(
            s.execute(select(col(Message.status)).where(col(Message.kind) == "campaign")).scalars()
        )
    assert statuses == ["delivered"] * 5 + ["undelivered"]
    assert (stats.recipients, stats.held_out, stats.sms, stats.email) == (6, 0, 6, 0)
    assert (stats.sms_handed, stats.delivered, stats.delivered_pct) == (6, 5, 83.3)
    assert stats.failed_by_code == {"30003": 1}
    assert (stats.replied, stats.reply_pct) == (2, 33.3)  # S0 (twice) and S1; a STOP is none
    assert (stats.opted_out, stats.opt_out_pct) == (1, 16.7)
    # Both first replies came ten minutes (emulator clock) after the texts; the texts' own
    # times are taken after Twilio answered, so a second either way.
    assert stats.median_reply_minutes == pytest.approx(10.0, abs=0.2)
    assert stats.first_reply_within_1h_pct == 100.0


def digest_mails(world: College) -> list[tuple[str, str]]:
    return sorted(
        (str(m["To"]), str(m["Subject"]))
        for m in world.smtp.messages
        if str(m["Subject"]).startswith(DIGEST_SUBJECT)
    )


def test_the_digest_is_a_page_and_one_email_per_address_per_week(world: College) -> None:
    from tests.e2e.test_replies import text_of

    settings = world.settings.model_copy(update={"alert_emails": [*ADMINS, " "]})
    # The replies are dated by the emulator's clock, 20 minutes ahead: the digest runs after.
    now = world.env.now() + timedelta(minutes=30)
    week = iso_week(now, "America/New_York")
    first = run_digest(settings, env=world.env, now=now)
    again = run_digest(settings, env=world.env, now=now)  # the same week: nothing more sent
    assert (first["emails_queued"], first["emails_sent"], first["email_errors"]) == (2, 2, [])
    assert (again["emails_queued"], again["emails_sent"]) == (0, 0)
    subject = f"{DIGEST_SUBJECT} to {first['until'][:10]}: 1 campaign(s), replied 33.3%"
    assert digest_mails(world) == [(ADMINS[0], subject), (ADMINS[1], subject)]

    page = Path(first["page"])
    assert page == settings.report_dir.absolute() / "outreach" / f"{first['until'][:10]}.html"
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 1 and f'data-campaign="{campaign_id(world)}"' in html
    assert 'data-card="reply_pct">33.3%<' in html and 'data-staff="T1"' in html
    (mail,) = [m for m in world.smtp.messages if m["To"] == ADMINS[0]]
    body = text_of(mail)
    assert f"Report page (opens offline, with the chart): {page}" in body
    assert f"(sent once in week {week})" in body and first["week"] == week
    assert "replied 33.3% (2); opted out 16.7% (1)" in body and "30003 x1" in body
    for number in world.students:  # counts and names only, never a number
        assert number not in body and number not in html

    (campaign,) = first["campaigns"]
    assert (campaign["recipients"], campaign["reply_pct"], campaign["sender"]["id"]) == (
        6,
        33.3,
        "T1",
    )
    (tess,) = [p for p in first["staff"] if p["staff_id"] == "T1"]
    assert (tess["texts_sent"], tess["replies"], tess["students_replied"]) == (6, 3, 2)
    assert (tess["unanswered"], tess["answered"], tess["overdue"]) == (3, 0, 0)

    later = run_digest(settings, env=world.env, now=now + timedelta(days=7))
    assert (later["emails_queued"], later["emails_sent"], later["totals"]["campaigns"]) == (
        2,
        2,
        0,
    )
    assert len(digest_mails(world)) == 4


# --- Prefect: the outcome tables poll-replies refreshes, the digest's markdown -------------


def artifact_versions(key: str) -> list[Any]:
    """The versions of the artifact ``key``, the latest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        return list(
            client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort=ArtifactSort.CREATED_DESC,
            )
        )


def figures(artifact: Any) -> dict[str, Any]:
    import json

    return {row["figure"]: row["value"] for row in json.loads(str(artifact.data))}


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_outcome_tables_are_published_inside_a_run_and_only_when_they_change(
    prefect_harness: None, settings: Settings, engine: Any, tmp_path: Path
) -> None:
    from prefect import flow

    with Session(engine) as s:
        stored = outreach(s)
    env = Env(
        settings,
        engine,
        OutboxMailer(tmp_path / "outbox", "nudge@test"),
        lambda: None,  # type: ignore[arg-type,return-value]  # nothing is sent
        now=lambda: T0 + timedelta(days=1),
    )

    @flow(name="outcomes-under-test")
    def publishing(days: int) -> int:
        return publish_outcomes(env, days=days)

    assert publish_outcomes(env) == 0  # outside a run: nothing
    assert publishing(30) == 3  # Bo's campaign and Ann's two; never the reply campaign
    (shown,) = artifact_versions(outcome_key(stored.first))
    assert figures(shown) == {
        "Recipients (students messaged)": 6,
        "Held out on purpose": 1,
        "By SMS": 4,
        "By email": 1,
        "Could not be reached": 1,
        "SMS handed to Twilio": 4,
        "Delivered, % of SMS handed to Twilio": 50.0,
        "Not delivered, error 30003": 1,
        "Not delivered, error none": 1,
        "Replied": 3,
        "Replied, % of recipients": 50.0,
        "Opted out (STOP)": 2,
        "Opted out, % of recipients": 33.3,
        "Median minutes to the first reply": 30.0,
        "First reply within an hour, % of repliers": 66.7,
    }
    assert f"#{stored.first} Ann Test (A1): Forms are due Friday" in str(shown.description)
    assert publishing(30) == 0  # nothing changed: no new version
    assert publishing(0) == 0  # nothing first sent in the last 0 days
    with Session(engine) as s:  # S1 texts STOP to Ann: the first campaign's figures change
        s1, ann = stored_people(s)
        inbound(s, s1, ann, 25, keyword="stop")
        s.commit()
    assert publishing(30) == 1
    latest, earlier = artifact_versions(outcome_key(stored.first))
    assert (figures(latest)["Opted out (STOP)"], figures(earlier)["Opted out (STOP)"]) == (3, 2)
    assert len(artifact_versions(outcome_key(stored.second))) == 1


def stored_people(s: Session) -> tuple[int, int]:
    from models.people import Person

    rows = s.execute(select(col(Person.sis_id), col(Person.id))).all()
    ids: dict[str, int] = {sis_id: int(pid) for sis_id, pid in rows if pid is not None}
    return ids["S1"], ids["A1"]


@pytest.fixture
def flow_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Flows read settings from the environment, as deployments do."""
    from nudge.settings import get_settings

    monkeypatch.setenv("NUDGE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NUDGE_OUTBOX_DIR", str(settings.outbox_dir))
    monkeypatch.setenv("NUDGE_REPORT_DIR", str(settings.report_dir))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_digest_flow_leaves_its_markdown_artifact(
    prefect_harness: None, flow_settings: Settings
) -> None:
    from flows.outreach_digest import outreach_digest

    done = outreach_digest(return_state=True)
    assert done.is_completed(), done
    result = done.result()
    assert result["artifact"] is True and Path(result["page"]).is_file()
    (shown,) = artifact_versions("outreach-digest")
    assert shown.flow_run_id == done.state_details.flow_run_id
    assert f"## Outreach digest, the 7 days to {result['until'][:10]}" in str(shown.data)
    assert f"`{result['page']}`" in str(shown.data)
