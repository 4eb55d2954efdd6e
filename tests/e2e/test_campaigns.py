"""Campaigns end to end: real SDK over HTTP to the emulator, real SMTP, SQLite and PostgreSQL.

The emulator's counters are the ground truth of "what did the phones receive".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from adapters.twilio.types import SendResult, SmsGateway
from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from flows.send_campaign import run_campaign, run_dispatch, work
from models.config import load_config, save_config
from models.consent import set_consent
from models.messaging import Campaign, Message, QuotaLedger, SendChunk, SenderNumber
from models.people import Person, PhoneNumber
from nudge.settings import Settings
from tasks.campaigns import cancel_campaign
from tasks.env import Env
from tests.e2e.conftest import fast_gateway

EVERYONE_ADVISED_BY_T1 = AudienceFilter(caseload=["T1"])


def request(
    sender: str = "T1", message: str = "Hi {preferred_name}, advising opens Monday.", **kw: Any
) -> CampaignRequest:
    kw.setdefault("audience", EVERYONE_ADVISED_BY_T1)
    return CampaignRequest(sender_id=sender, message=message, **kw)


def configure(settings: Settings, **values: Any) -> None:
    from models.db import make_engine

    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        config = load_config(session=s)
        for key, value in values.items():
            setattr(config, key, value)
        save_config(config, session=s)
        s.commit()
    engine.dispose()


def campaign_sms_per_number(emulator: Any, body_prefix: str = "Hi ") -> dict[str, int]:
    """How many campaign texts (not notices, not auto-replies) each number received."""
    import httpx

    sid = "AC" + "0" * 32
    seen: dict[str, int] = {}
    url = f"/2010-04-01/Accounts/{sid}/Messages.json?PageSize=1000"
    with httpx.Client(base_url=emulator.base_url, auth=(sid, "x")) as client:
        while url:
            page = client.get(url).json()
            for m in page["messages"]:
                if m["direction"] == "outbound-api" and m["body"].startswith(body_prefix):
                    seen[m["to"]] = seen.get(m["to"], 0) + 1
            url = page["next_page_uri"]
    return seen


def test_campaign_texts_each_student_once_with_one_opt_in_notice(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    numbers = college(6)
    result = run_campaign(request(), settings=live_settings, env=make_env())
    assert (result["status"], result["recipients"], result["sms"], result["email"]) == (
        "completed",
        6,
        6,
        0,
    )
    assert campaign_sms_per_number(emulator) == dict.fromkeys(numbers, 1)
    assert emulator.counters()["per_to"] == dict.fromkeys(numbers, 2)  # notice + message
    again = run_campaign(
        request(message="Hi again, {first_name}"), settings=live_settings, env=make_env()
    )
    assert again["opt_in_notices"] == 0
    assert emulator.counters()["per_to"] == dict.fromkeys(numbers, 3)
    with Session(make_env().engine) as s:
        assert s.execute(select(func.count()).select_from(SenderNumber)).scalar_one() == 1
        statuses = set(s.execute(select(Message.status)).scalars())
        assert statuses == {"sent"}


def test_audience_filters_pick_only_matching_students(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    numbers = college(4)
    audience = AudienceFilter(student_ids=["S1", "S3"], programs=["nursing"])
    result = run_campaign(request(audience=audience), settings=live_settings, env=make_env())
    assert result["recipients"] == 2
    assert set(campaign_sms_per_number(emulator)) == {numbers[1], numbers[3]}


def test_opted_out_student_gets_email_and_no_sms(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    numbers = college(3)
    env = make_env()
    with Session(env.engine) as s:
        set_consent(session=s, e164=numbers[0], status="opted_out", source="stop", reason="test")
        s.commit()
    result = run_campaign(request(), settings=live_settings, env=env)
    assert (result["sms"], result["email"]) == (2, 1)
    assert numbers[0] not in emulator.counters()["per_to"]
    [mail] = smtp.messages
    assert mail["To"] == "s0@college.edu" and "advising opens Monday" in mail.get_payload()
    with Session(env.engine) as s:
        row = s.execute(select(Message).where(Message.to_addr == "s0@college.edu")).scalar_one()
        assert (row.channel, row.status, row.reason) == ("email", "sent", "opted_out")


def test_quota_exhausted_mid_campaign_sends_the_rest_by_email(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    college(5)
    configure(live_settings, monthly_limit=5)  # notice + message = 2 per student
    env = make_env()
    result = run_campaign(request(), settings=live_settings, env=env)
    assert (result["sms"], result["email"]) == (2, 3)
    assert len(smtp.messages) == 3
    with Session(env.engine) as s:
        assert s.execute(select(func.sum(QuotaLedger.used))).scalar_one() == 4
    assert emulator.counters()["messages_created"] == 4


def test_quota_is_rechecked_at_send_time_not_only_at_planning(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    college(4)
    configure(live_settings, monthly_limit=100)
    env = make_env()
    planned = run_campaign(
        request(send_at=datetime.now(UTC) + timedelta(minutes=5)), settings=live_settings, env=env
    )
    assert planned["status"] == "scheduled" and planned["sms"] == 4
    configure(live_settings, monthly_limit=3)
    later = make_env(now=lambda: datetime.now(UTC) + timedelta(minutes=6))
    with Session(env.engine) as s:  # the dispatcher looks at the real clock for send_at
        s.execute(
            Campaign.__table__.update().values(send_at=datetime.now(UTC) - timedelta(seconds=1))
        )  # type: ignore[attr-defined]
        s.commit()
    run_dispatch(live_settings, env=later)
    assert emulator.counters()["messages_created"] == 2  # one student: notice + message
    assert len(smtp.messages) == 3


def test_sender_without_permitted_role_is_refused_and_nothing_is_planned(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    college(3)
    env = make_env()
    result = run_campaign(request(sender="N1"), settings=live_settings, env=env)
    assert result["status"] == "refused"
    assert "Nia Moss (N1) may not send texts" in result["refused_reason"]
    assert "Texting" in result["refused_reason"]
    with Session(env.engine) as s:
        assert s.execute(select(func.count()).select_from(Message)).scalar_one() == 0
    assert emulator.counters()["create_requests"] == 0


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        pytest.param("Hi {nickname}", "nickname", id="unknown-variable"),
        pytest.param("{first_name}" + "x" * 1595, "S0", id="too-long-for-a-recipient"),
    ],
)
def test_bad_message_is_refused_before_planning(
    live_settings: Settings,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
    message: str,
    needle: str,
) -> None:
    college(2, first_name="Maximilian")
    env = make_env()
    result = run_campaign(request(message=message), settings=live_settings, env=env)
    assert result["status"] == "refused" and needle in result["refused_reason"]
    with Session(env.engine) as s:
        assert s.execute(select(func.count()).select_from(Message)).scalar_one() == 0


def test_dry_run_previews_exact_figures_and_stores_nothing(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    college(3)
    env = make_env()
    result = run_campaign(
        request(message="{first_name}: " + "ő" * 70, dry_run=True), settings=live_settings, env=env
    )
    assert result["campaign_id"] is None and result["sms"] == 3
    assert result["segments"]["encodings"] == {"UCS-2": 3}
    assert result["segments"]["min"] == result["segments"]["max"] == 2
    with Session(env.engine) as s:
        assert s.execute(select(func.count()).select_from(Campaign)).scalar_one() == 0
    assert emulator.counters()["create_requests"] == 0


class Crash(BaseException):
    """A worker process dying mid-campaign (not an error the send path may catch)."""


class Delegating:
    """A gateway that forwards everything to the real one; subclasses change ``send``."""

    def __init__(self, inner: SmsGateway) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class CrashingGateway(Delegating):
    """Delegates to the real gateway; dies after ``after`` sends, before or after one is accepted."""

    def __init__(self, inner: SmsGateway, after: int, *, accepted: bool) -> None:
        super().__init__(inner)
        self.after, self.accepted, self.count = after, accepted, 0

    async def send(self, **kw: Any) -> SendResult:
        if self.count >= self.after:
            if self.accepted:
                await self.inner.send(**kw)  # Twilio has it; our record of it dies with us
            raise Crash
        self.count += 1
        return await self.inner.send(**kw)


@pytest.mark.parametrize(
    "accepted", [pytest.param(False, id="before-request"), pytest.param(True, id="after-accept")]
)
def test_crash_then_rerun_texts_each_recipient_exactly_once(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
    accepted: bool,
) -> None:
    from tests.e2e.conftest import fast_gateway

    numbers = college(10)
    dying = make_env(
        gateway=lambda: CrashingGateway(fast_gateway(live_settings), 7, accepted=accepted)
    )
    with pytest.raises(Crash):
        run_campaign(request(), settings=live_settings, env=dying)
    # Another worker, after the dead one's claim went stale, finishes the campaign.
    later = make_env(now=lambda: datetime.now(UTC) + timedelta(minutes=3))
    work(live_settings, env=later)
    assert campaign_sms_per_number(emulator) == dict.fromkeys(numbers, 1)
    assert max(emulator.counters()["per_to"].values()) == 2
    with Session(later.engine) as s:
        assert set(s.execute(select(Message.status)).scalars()) == {"sent"}
        assert s.execute(select(Campaign.status)).scalar_one() == "completed"
        assert s.execute(select(func.sum(QuotaLedger.used))).scalar_one() == 20


def test_429_storm_is_retried_and_each_student_texted_once(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    numbers = college(8)
    emulator.control(share_429=0.5, seed=3)
    result = run_campaign(request(), settings=live_settings, env=make_env())
    assert result["status"] == "completed" and result["sms"] == 8
    assert campaign_sms_per_number(emulator) == dict.fromkeys(numbers, 1)
    assert emulator.counters()["faults"]["429"] > 0


def test_dropped_responses_are_reconciled_not_resent(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    numbers = college(8)
    emulator.control(share_drop_after_accept=0.4, seed=5)
    env = make_env()
    result = run_campaign(request(), settings=live_settings, env=env)
    emulator.control(share_drop_after_accept=0.0)
    work(live_settings, env=make_env(now=lambda: datetime.now(UTC) + timedelta(minutes=3)))
    assert result["sms"] == 8
    assert emulator.counters()["faults"]["drop"] > 0
    assert campaign_sms_per_number(emulator) == dict.fromkeys(numbers, 1)
    assert max(emulator.counters()["per_to"].values()) == 2


def test_concurrent_campaigns_never_exceed_the_quota(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    college(10)
    configure(live_settings, monthly_limit=13)
    results: list[dict[str, Any]] = []

    def run(sender: str) -> None:
        results.append(
            run_campaign(
                request(sender=sender, message=f"Hi from {sender}"),
                settings=live_settings,
                env=make_env(),
            )
        )

    threads = [threading.Thread(target=run, args=(s,)) for s in ("T1", "T2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Session(make_env().engine) as s:
        used = s.execute(select(func.sum(QuotaLedger.used))).scalar_one()
    # Each student's notice and text reserve their quota together (2 units), so of the 13
    # the 40 wanted, 12 are used and the odd one stays free: never more, and none lost.
    assert used == 12
    assert emulator.counters()["messages_created"] == used
    assert (
        sum(r["result"]["sms"] for r in results) + sum(r["result"]["email"] for r in results) == 20
    )


def test_fatal_error_stops_the_campaign_and_alerts_admins(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    numbers = college(12)
    emulator.control(recipient_errors={numbers[2]: 21408})
    result = run_campaign(request(), settings=live_settings, env=make_env())
    assert result["status"] == "stopped" and "21408" in result["stop_reason"]
    # The first chunk (S0-S3, one paced group) is sent whole: the three others in it get
    # their notice and text; nothing of the later chunks goes out after the stop.
    assert emulator.counters()["per_to"] == dict.fromkeys([numbers[0], numbers[1], numbers[3]], 2)
    alerts = [m for m in smtp.messages if m["To"] == "sms-admin@college.edu"]
    assert len(alerts) == 1 and "stopped" in alerts[0]["Subject"]


def test_number_that_cannot_take_sms_is_disabled_and_emailed(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    numbers = college(3)
    emulator.control(recipient_errors={numbers[1]: 21614})
    env = make_env()
    result = run_campaign(request(), settings=live_settings, env=env)
    assert (result["result"]["sms"], result["result"]["email"]) == (2, 1)
    with Session(env.engine) as s:
        p = s.execute(select(PhoneNumber).where(PhoneNumber.e164 == numbers[1])).scalar_one()
        assert p.disabled_by_carrier and p.carrier_error_code == 21614
        person = s.execute(select(Person).where(Person.sis_id == "S1")).scalar_one()
        assert person.sms_e164 is None and person.sms_reason == "carrier_disabled"
    assert [m["To"] for m in smtp.messages] == ["s1@college.edu"]


def test_scheduled_campaign_waits_can_be_cancelled_and_due_ones_dispatch(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    college(2)
    env = make_env()
    future = datetime.now(UTC) + timedelta(hours=1)
    first = run_campaign(request(send_at=future), settings=live_settings, env=env)
    second = run_campaign(
        request(send_at=future, message="Hi second"), settings=live_settings, env=env
    )
    assert first["status"] == second["status"] == "scheduled"
    assert cancel_campaign(env.engine, first["campaign_id"]) == "cancelled"
    with pytest.raises(ValueError, match="only a scheduled campaign"):
        cancel_campaign(env.engine, first["campaign_id"])
    assert run_dispatch(live_settings, env=env)["started"] == []
    with Session(env.engine) as s:
        s.execute(
            Campaign.__table__.update()
            .where(Campaign.__table__.c.id == second["campaign_id"])  # type: ignore[attr-defined]
            .values(send_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        s.commit()
    assert run_dispatch(live_settings, env=env)["started"] == [second["campaign_id"]]
    assert sum(campaign_sms_per_number(emulator).values()) == 2


def test_quiet_hours_defer_and_dispatch_sends_at_window_start(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    college(2)
    now_ny = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    start = (now_ny + timedelta(hours=2)).strftime("%H:00")
    end = (now_ny + timedelta(hours=3)).strftime("%H:00")
    configure(live_settings, quiet_hours=f"{start}-{end}")
    result = run_campaign(request(), settings=live_settings, env=make_env())
    # Not stuck: the campaign says it waits, how many and until when (in the college's zone).
    assert result["deferred"] == 2 and result["status"] == "waiting"
    assert result["waiting"]["messages"] == 4  # the opt-in notice and the text, twice
    assert result["waiting"]["until_local"].endswith(("EST", "EDT"))
    assert emulator.counters()["messages_created"] == 0
    run_dispatch(
        live_settings, env=make_env(now=lambda: datetime.now(UTC) + timedelta(hours=2, minutes=1))
    )
    assert emulator.counters()["messages_created"] == 4


def test_two_concurrent_first_sends_provision_one_number(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    from tasks.sender_numbers import ensure_sender_number
    from tests.e2e.conftest import fast_gateway

    college(1)
    env = make_env()
    with Session(env.engine) as s:
        staff = s.execute(select(Person).where(Person.sis_id == "T1")).scalar_one()

    async def both() -> list[str]:
        g1, g2 = fast_gateway(live_settings), fast_gateway(live_settings)
        try:
            return list(
                await asyncio.gather(
                    ensure_sender_number(env, g1, staff), ensure_sender_number(env, g2, staff)
                )
            )
        finally:
            await g1.aclose()
            await g2.aclose()

    first, second = asyncio.run(both())
    assert first == second
    with Session(env.engine) as s:
        assert s.execute(select(func.count()).select_from(SenderNumber)).scalar_one() == 1


class SkewedClock:
    """The wall clock plus a skew the test moves: "later" for the workers without waiting."""

    def __init__(self) -> None:
        self.skew = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.skew


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class SlowGateway(Delegating):
    """The real gateway, one second slower per send (a loaded Twilio or a slow network)."""

    async def send(self, **kw: Any) -> SendResult:
        await asyncio.sleep(1.0)
        return await self.inner.send(**kw)


def test_a_slow_live_worker_keeps_its_chunk(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    from tasks.campaigns import plan_campaign
    from tests.e2e.conftest import fast_gateway

    numbers = college(4)  # one chunk: its only batch takes ~2 s, the claim goes stale in 0.4 s
    settings = live_settings.model_copy(update={"claim_stale_s": 0.4})
    stale = timedelta(seconds=settings.claim_stale_s)
    clock = SkewedClock()  # both workers' clock
    plan = plan_campaign.fn(request(), settings, make_env(settings=settings).engine)
    slow = make_env(
        gateway=lambda: SlowGateway(fast_gateway(settings)), settings=settings, now=clock
    )

    def held() -> SendChunk | None:
        with Session(slow.engine) as s:
            return s.execute(
                select(SendChunk).where(SendChunk.claimed_by == slow.worker)
            ).scalar_one_or_none()

    def beat_since(moment: datetime) -> bool:
        chunk = held()
        return chunk is not None and chunk.heartbeat_at is not None and chunk.heartbeat_at >= moment

    first = threading.Thread(
        target=work, args=(settings,), kwargs={"env": slow, "campaign_id": plan.campaign_id}
    )
    first.start()
    wait_for("the slow worker to hold the chunk", lambda: held() is not None)
    # Move both workers' clock past the stale time instead of sleeping through it, then wait
    # for the slow worker's next heartbeat (its own thread beats every ~0.13 s).
    clock.skew = stale + timedelta(seconds=0.2)
    jumped = clock()
    wait_for("a heartbeat after the jump", lambda: beat_since(jumped))
    chunk = held()
    assert chunk is not None and chunk.claimed_at is not None
    # By its claim time the chunk would be free now: only the heartbeats keep it.
    assert chunk.claimed_at < clock() - stale
    other = work(
        settings,
        env=make_env(settings=settings, now=clock),
        campaign_id=plan.campaign_id,
        poll_s=0.1,
    )
    first.join()
    assert other.chunks == 0  # it waited on the live claim instead of taking it over
    assert emulator.counters()["per_to"] == dict.fromkeys(numbers, 2)
    assert smtp.messages == []


def test_stopped_campaign_resumes_after_the_fix_and_sends_only_what_was_not_sent(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from typer.testing import CliRunner

    from nudge.cli.main import app
    from nudge.settings import get_settings

    numbers = college(12)
    emulator.control(recipient_errors={numbers[2]: 21408})
    stopped = run_campaign(request(), settings=live_settings, env=make_env())
    assert stopped["status"] == "stopped"
    emulator.control(recipient_errors={})  # the admin fixed the account
    for key, value in {
        "NUDGE_DATABASE_URL": live_settings.database_url,
        "NUDGE_TWILIO_BASE_URL": emulator.base_url,
        "NUDGE_SMTP_HOST": smtp.host,
        "NUDGE_SMTP_PORT": str(smtp.port),
        "NUDGE_SENDER_MPS": "1000",
        "NUDGE_ACCOUNT_MPS": "1000",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(
            app, ["campaigns", "resume", str(stopped["campaign_id"]), "--json"]
        )
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["status"] == "completed"
    assert campaign_sms_per_number(emulator) == dict.fromkeys(numbers, 1)
    assert max(emulator.counters()["per_to"].values()) == 2


# --- issue 10: validity period, exit codes, isolation of a failing chunk -------------------------


def test_every_sms_carries_the_validity_until_the_window_closes_and_a_backlog_expires(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    from flows.poll_replies import run_poll
    from tasks.campaigns import plan_campaign

    numbers = college(2)
    # Quiet hours are off while planning.
    planned = plan_campaign.fn(request(), live_settings, make_env().engine)
    configure(live_settings, quiet_hours="08:00-21:00")
    # 20:50 in New York (the numbers' zone): ten minutes before the window closes.
    ten_to_nine = datetime(2026, 11, 28, 1, 50, tzinfo=UTC)
    emulator.control(queue_delay_s=900)  # Twilio's queue is backed up by a quarter of an hour
    work(live_settings, campaign_id=planned.campaign_id, env=make_env(now=lambda: ten_to_nine))
    with Session(make_env().engine) as s:
        sids = list(
            s.execute(select(Message.provider_sid).where(Message.status == "sent")).scalars()
        )
    assert len(sids) == 4  # opt-in notice and text, for two students
    assert {emulator.message_record(sid)["validity_period_s"] for sid in sids} == {600}
    emulator.advance(601)
    statuses = run_poll(
        live_settings, env=make_env(now=lambda: ten_to_nine + timedelta(minutes=11))
    )
    assert (statuses["statuses_updated"], statuses["failed"], statuses["expired"]) == (4, 4, 4)
    with Session(make_env().engine) as s:
        codes = set(s.execute(select(Message.error_code)).scalars())
    assert codes == {30036}
    assert emulator.counters()["expired"] == 4  # nothing reached a phone at 2 a.m.
    assert len(numbers) == 2


def test_an_unexpected_error_in_one_chunk_does_not_stop_the_others(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tasks import send
    from tasks.campaigns import plan_campaign

    college(8)  # chunk_size 4: two chunks of four students
    planned = plan_campaign.fn(request(), live_settings, make_env().engine)
    original = send.ChunkSender._check
    first_chunk: list[int] = []

    def explode(self: send.ChunkSender, jobs: Any) -> Any:
        if not first_chunk:
            first_chunk.append(self.claim.chunk_id)
        if self.claim.chunk_id == first_chunk[0]:
            raise RuntimeError("a bug that hits one chunk")
        return original(self, jobs)

    monkeypatch.setattr(send.ChunkSender, "_check", explode)
    report = work(live_settings, campaign_id=planned.campaign_id, env=make_env())
    assert report.errors == [f"chunk {first_chunk[0]}: RuntimeError: a bug that hits one chunk"]
    assert sum(campaign_sms_per_number(emulator).values()) == 4  # the other chunk went
    with Session(make_env().engine) as s:
        chunk = s.get(SendChunk, first_chunk[0])
        assert chunk is not None and (chunk.status, chunk.failures) == ("pending", 1)
        assert "a bug that hits one chunk" in (chunk.last_error or "")
    monkeypatch.setattr(send.ChunkSender, "_check", original)
    # The dispatcher retries it once its backoff has passed; the campaign completes.
    later = make_env(now=lambda: datetime.now(UTC) + timedelta(minutes=1))
    assert run_dispatch(live_settings, env=later)["errors"] == []
    assert sum(campaign_sms_per_number(emulator).values()) == 8
    with Session(make_env().engine) as s:
        assert s.get(Campaign, planned.campaign_id).status == "completed"  # type: ignore[union-attr]


def test_dispatch_picks_up_abandoned_chunks_but_never_joins_a_live_campaign(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    from models.chunks import claim_chunk
    from tasks.campaigns import plan_campaign

    college(8)
    planned = plan_campaign.fn(request(), live_settings, make_env().engine)
    env = make_env()
    now = datetime.now(UTC)
    with Session(env.engine) as s:
        # Another machine's worker holds the first chunk and is alive (fresh heartbeat).
        held = claim_chunk(
            session=s, worker="elsewhere:4242:w", now=now, stale_before=now - timedelta(seconds=15)
        )
    assert held is not None
    assert run_dispatch(live_settings, env=env)["chunks"] == 0  # its workers are on it
    assert emulator.counters()["messages_created"] == 0
    # That worker dies: once its heartbeat is stale, dispatch finishes the whole campaign.
    later = make_env(now=lambda: datetime.now(UTC) + timedelta(seconds=20))
    assert run_dispatch(live_settings, env=later)["chunks"] == 2
    assert sum(campaign_sms_per_number(emulator).values()) == 8
    with Session(env.engine) as s:
        assert s.get(Campaign, planned.campaign_id).status == "completed"  # type: ignore[union-attr]


class ResoldNumberGateway(Delegating):
    """Twilio sells a number nudge already has on record for someone else (once)."""

    def __init__(self, inner: SmsGateway, number: str) -> None:
        super().__init__(inner)
        self.number = number

    async def provision_number(self, **kw: Any) -> Any:
        from dataclasses import replace

        bought = await self.inner.provision_number(**kw)
        return replace(bought, phone_number=self.number)


def test_a_sender_number_conflict_stops_the_campaign_clearly_and_it_resumes_once_resolved(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    import asyncio as aio

    from tasks.campaigns import plan_campaign

    numbers = college(3)
    # T2 already texts from a number; Twilio (wrongly) sells that same number for T1.
    first = make_env()
    with Session(first.engine) as s:
        t2 = s.execute(select(Person).where(Person.sis_id == "T2")).scalar_one()
        s.add(SenderNumber(staff_person_id=t2.id, e164="+12125550199", status="active"))
        s.commit()
    planned = plan_campaign.fn(request(), live_settings, make_env().engine)
    resold = make_env(
        gateway=lambda: ResoldNumberGateway(fast_gateway(live_settings), "+12125550199")
    )
    report = work(live_settings, campaign_id=planned.campaign_id, env=resold)
    assert emulator.counters()["messages_created"] == 0
    assert report.stopped and "already another staff member's sender number" in report.stopped[0]
    assert "it is on record for T2" in report.stopped[0]
    with Session(first.engine) as s:
        campaign = s.get(Campaign, planned.campaign_id)
        assert campaign is not None and campaign.status == "stopped"
    [alert] = [m for m in smtp.messages if m["To"] == "sms-admin@college.edu"]
    assert "nudge senders reset T1" in alert.get_payload(decode=True).decode()
    # Another try does not buy yet another number: it stops at once, naming the conflict.
    with Session(first.engine) as s:
        t1 = s.execute(select(Person).where(Person.sis_id == "T1")).scalar_one()
    from tasks.sender_numbers import SenderNumberConflict, ensure_sender_number

    with pytest.raises(SenderNumberConflict):
        aio.run(ensure_sender_number(first, fast_gateway(live_settings), t1))
    # The admin fixes it in Twilio, resets the conflict and resumes: everyone gets one text.
    from models.campaign_lifecycle import resume_campaign
    from models.senders import reset_sender

    with Session(first.engine) as s:
        assert reset_sender(session=s, staff_person_id=t1.id) == "conflict"  # type: ignore[arg-type]
        assert resume_campaign(session=s, campaign_id=planned.campaign_id)  # type: ignore[arg-type]
        s.commit()
    work(live_settings, campaign_id=planned.campaign_id, env=make_env())
    assert campaign_sms_per_number(emulator) == dict.fromkeys(numbers, 1)


def test_a_text_left_in_flight_by_a_dead_worker_of_a_cancelled_campaign_is_settled(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    import socket
    import subprocess
    import sys

    from models.cancel import cancel_campaign as cancel
    from models.chunks import claim_chunk
    from models.outbox import load_chunk, mark_sending
    from tasks.campaigns import plan_campaign

    college(2)
    planned = plan_campaign.fn(request(), live_settings, make_env().engine)
    env = make_env()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{int(gone.stdout)}:x"
    past = datetime.now(UTC) - timedelta(minutes=5)
    with Session(env.engine) as s:
        claim = claim_chunk(session=s, worker=dead, now=past, stale_before=past)
        assert claim is not None
        row = load_chunk(session=s, chunk_id=claim.chunk_id, now=past)[0]
        assert mark_sending(session=s, row=row, token=claim.token, now=past)
        s.commit()
        cancelled = cancel(session=s, campaign_id=claim.campaign_id, now=past)
        s.commit()
    assert (cancelled.in_flight, cancelled.skipped) == (1, 3)  # the notice in flight stays
    report = work(live_settings, env=env)
    assert report.errors == []
    with Session(env.engine) as s:
        statuses = set(
            s.execute(
                select(Message.status).where(Message.campaign_id == planned.campaign_id)
            ).scalars()
        )
    assert statuses == {"skipped"}  # never sent (the provider has nothing): it ends cancelled
    assert emulator.counters()["messages_created"] == 0
