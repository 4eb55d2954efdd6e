"""The outbox under faults, counted where the world sees it: the emulator's message list and
a real SMTP server's received log — never only our own tables.

* kill -9 during the email phase of an all-email campaign with a slow mail server, then
  ``nudge campaigns resume``: every recipient exactly one email (the one email in flight is
  ``unknown``, listed with its Message-ID, resent only by an admin who checked);
* SIGSTOP a worker past the stale time, let another take over, SIGCONT: 0 duplicate SMS;
* kill -9 the poller while it emails staff through a slow server, poll again: each reply
  notified exactly once;
* line breaks and NUL in staff and student names: campaigns complete for everyone else, no
  header is injected, ``dispatch`` and ``poll`` keep working;
* a scheduled campaign whose sender loses the role before it is due: 0 SMS, every message
  ``refused`` with ``sender_not_permitted``;
* three workers pacing one sender number: the busiest second stays within the limit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.mail.message import message_id_for
from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from domain.outbox import IN_FLIGHT_MARGIN
from flows.poll_replies import run_poll
from flows.send_campaign import run_campaign, run_dispatch, work
from models.config import load_config, save_config
from models.db import make_engine
from models.messaging import Campaign, InboundMessage, Message, SenderNumber
from models.people import Person
from models.roles import RoleGrant
from nudge import wiring
from nudge.settings import Settings
from tasks.campaigns import plan_campaign
from tests.conftest import POSTGRES_URL
from tests.e2e.stack import REPO
from tests.helpers import phone, staff, student, write_extract

pytestmark = [pytest.mark.slow]

SID = "AC" + "0" * 32


# --- helpers ---------------------------------------------------------------------------------


def nudge_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a ``nudge`` process working on the test's database and servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    env.update(
        NUDGE_DATABASE_URL=settings.database_url,
        NUDGE_OUTBOX_DIR=str(settings.outbox_dir),
        NUDGE_SENDER_MPS=str(settings.sender_mps),
        NUDGE_ACCOUNT_MPS=str(settings.account_mps),
        NUDGE_SEND_CONCURRENCY=str(settings.send_concurrency),
        NUDGE_CHUNK_SIZE=str(settings.chunk_size),
        PYTHONPATH=str(REPO),
    )
    if settings.twilio_base_url:
        env["NUDGE_TWILIO_BASE_URL"] = settings.twilio_base_url
    if settings.smtp_host:
        env["NUDGE_SMTP_HOST"] = settings.smtp_host
        env["NUDGE_SMTP_PORT"] = str(settings.smtp_port)
    env.update(extra)
    return env


def nudge(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, dict[str, Any]]:
    """Run ``nudge ARGS --json`` to the end; returns the exit code and the JSON it printed."""
    out = subprocess.run(
        [sys.executable, "-m", "nudge", *args, "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines, f"nudge {' '.join(args)} printed no JSON:\n{out.stdout}\n{out.stderr}"
    return out.returncode, json.loads(lines[-1])


@contextmanager
def spawned(*args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``nudge ARGS`` in the background; killed and reaped when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nudge", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.communicate(timeout=30)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def configure(settings: Settings, **values: Any) -> None:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        config = load_config(session=s)
        for key, value in values.items():
            setattr(config, key, value)
        save_config(config, session=s)
        s.commit()
    engine.dispose()


def texts_per_number(emulator: Any, body: str) -> Counter[str]:
    """How many outbound texts with ``body`` each number received, from the emulator."""
    seen: Counter[str] = Counter()
    url = f"/2010-04-01/Accounts/{SID}/Messages.json?PageSize=1000"
    with httpx.Client(base_url=emulator.base_url, auth=(SID, "x"), timeout=30) as client:
        while url:
            page = client.get(url).json()
            for m in page["messages"]:
                if m["direction"] == "outbound-api" and m["body"] == body:
                    seen[m["to"]] += 1
            url = page["next_page_uri"]
    return seen


def text_of(mail: Any) -> str:
    return str(mail.get_payload(decode=True).decode(mail.get_content_charset() or "utf-8"))


def received_per_address(smtp: Any) -> Counter[str]:
    """How many emails each address received, from the SMTP server's envelopes."""
    return Counter(rcpt for env in smtp.envelopes for rcpt in env.rcpt_tos)


def sync_college(
    settings: Settings,
    folder: Path,
    students: int,
    *,
    with_phones: bool | set[int],
) -> None:
    """Staff T1 (Texting) advising S0..Sn-1 with a cell number each (all, none, or those
    listed); quiet hours off, no quota."""
    from flows.sis_sync import run_sync

    people = [staff("T1", first_name="Tess", last_name="Adams", roles="Texting")]
    phones = []
    for i in range(students):
        people.append(student(f"S{i}", advisor_id="T1"))
        if with_phones is True or (isinstance(with_phones, set) and i in with_phones):
            phones.append(phone(f"S{i}", f"(212) 555-{1000 + i:04d}"))
    run_sync(write_extract(folder, people, phones), settings=settings)
    configure(settings, quiet_hours="off", monthly_limit=None)


def plan(settings: Settings, body: str, **kw: Any) -> int:
    outcome = plan_campaign.fn(
        CampaignRequest(
            sender_id="T1", message=body, audience=AudienceFilter(caseload=["T1"]), **kw
        ),
        settings,
        wiring.engine(settings),
    )
    assert outcome.campaign_id is not None, outcome.refused_reason
    return outcome.campaign_id


def statuses(engine: Any, campaign_id: int | None = None) -> dict[str, int]:
    with Session(engine) as s:
        stmt = select(Message.status, func.count()).group_by(Message.status)
        if campaign_id is not None:
            stmt = stmt.where(Message.campaign_id == campaign_id)
        return {str(k): int(v) for k, v in s.execute(stmt).all()}


# --- email: kill -9 mid-campaign, then resume ---------------------------------------------------


@pytest.mark.parametrize(
    "server_had_it",
    [
        pytest.param(True, id="server-kept-the-email-in-flight"),
        pytest.param(False, id="it-did-not"),
    ],
)
def test_killed_during_the_email_phase_every_recipient_gets_exactly_one_email(
    settings: Settings, smtp: Any, tmp_path: Path, server_had_it: bool
) -> None:
    n = 40
    live = settings.model_copy(
        update={"smtp_host": smtp.host, "smtp_port": smtp.port, "chunk_size": 15}
    )
    sync_college(live, tmp_path / "extract", n, with_phones=False)  # all email
    campaign_id = plan(live, "Registration closes Friday, {first_name}.")
    # A slow server that, when the client dies while it waits, keeps the message (or not).
    smtp.handler.delay_s = 0.05
    smtp.handler.record_before_reply = server_had_it
    env = nudge_env(live)
    with spawned("work", "--campaign", str(campaign_id), env=env) as worker:
        wait_for("a dozen emails", lambda: len(smtp.messages) >= 12)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    smtp.handler.delay_s = 0.0
    code, resumed = nudge("campaigns", "resume", str(campaign_id), env=env)
    assert (code, resumed["status"]) == (0, "completed"), resumed
    got = received_per_address(smtp)
    addresses = {f"s{i}@college.edu" for i in range(n)}
    assert set(got) <= addresses and max(got.values()) == 1  # nobody got two
    # The email in flight when the worker died (if the kill did not fall between two) is
    # never resent by itself: it is listed, with the Message-ID to look up on the server.
    unknown = resumed["unknown_emails"]
    assert len(unknown) <= 1
    seen_ids = {m["Message-ID"] for m in smtp.messages}
    missing = {u["to"] for u in unknown if u["message_id_header"] not in seen_ids}
    assert addresses - set(got) == missing
    # The admin resends what the server's log does not show.
    for item in unknown:
        if item["to"] in missing:
            code, resent = nudge("outbox", "resend", str(item["message_id"]), env=env)
            assert (code, resent["resent"], resent["emails_sent"]) == (0, [item["message_id"]], 1)
    assert received_per_address(smtp) == Counter(dict.fromkeys(addresses, 1))
    assert len({m["Message-ID"] for m in smtp.messages}) == n


# --- SMS: a paused worker wakes up after a takeover ------------------------------------------------


def test_a_worker_paused_past_the_stale_time_sends_no_duplicate(
    settings: Settings, engine: Engine, emulator: Any, smtp: Any, tmp_path: Path, make_env: Any
) -> None:
    n = 60
    body = "Advising week starts Monday."
    live = settings.model_copy(
        update={
            "twilio_base_url": emulator.base_url,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "sender_mps": 20.0,
            "account_mps": 1000.0,
            "send_concurrency": 4,
            "chunk_size": 30,
            "claim_stale_s": 1.0,
            "heartbeat_s": 0.2,
            "send_deadline_s": 1.0,
            "twilio_timeout_s": 1.0,
        }
    )
    sync_college(live, tmp_path / "extract", n, with_phones=True)
    campaign_id = plan(live, body)
    env = nudge_env(
        live,
        NUDGE_CLAIM_STALE_S="1",
        NUDGE_HEARTBEAT_S="0.2",
        NUDGE_SEND_DEADLINE_S="1",
        NUDGE_TWILIO_TIMEOUT_S="1",
        # Paused between two statements of a transaction, it would hold its row locks until
        # PostgreSQL ends its idle session: after 2 s here (a minute by default).
        NUDGE_DB_IDLE_TX_TIMEOUT_S="2",
    )
    with spawned("work", "--campaign", str(campaign_id), env=env) as paused:
        wait_for("the first texts", lambda: sum(texts_per_number(emulator, body).values()) >= 5)
        # Pause it while it holds texts marked `sending` (the case that used to double).
        wait_for("texts in flight", lambda: statuses(engine, campaign_id).get("sending", 0) > 0)
        os.kill(paused.pid, signal.SIGSTOP)
        # Another worker notices the silence, takes the chunk over, settles what the paused
        # one left in flight (after the in-flight bound) and finishes the campaign.
        give_up = time.monotonic() + 120
        taken = work(
            live,
            campaign_id=campaign_id,
            env=make_env(settings=live),
            poll_s=0.2,
            should_stop=lambda: time.monotonic() > give_up,
        )
        # 1 or 2 of the 2 chunks: whether the paused worker was on its first or second chunk
        # when it was stopped is timing, not something this test sets.
        assert taken.chunks >= 1
        with Session(engine) as s:
            assert s.get(Campaign, campaign_id).status == "completed"  # type: ignore[union-attr]
        os.kill(paused.pid, signal.SIGCONT)
        paused.wait(timeout=60)  # it wakes, finds its claim gone, and stops
    assert statuses(engine, campaign_id) == {"sent": 2 * n}
    texts = texts_per_number(emulator, body)
    assert texts == Counter({f"+1212555{1000 + i:04d}": 1 for i in range(n)})
    # The opt-in notice and the text, once each, for every student.
    assert emulator.counters()["per_to"] == {f"+1212555{1000 + i:04d}": 2 for i in range(n)}


# --- notifications: the poller dies mid-notify ---------------------------------------------------


@pytest.mark.parametrize(
    "server_had_it",
    [
        pytest.param(True, id="server-kept-the-email-in-flight"),
        pytest.param(False, id="it-did-not"),
    ],
)
def test_a_poller_killed_while_emailing_staff_notifies_each_reply_once(
    settings: Settings,
    engine: Engine,
    emulator: Any,
    smtp: Any,
    tmp_path: Path,
    make_env: Any,
    server_had_it: bool,
) -> None:
    n = 30
    live = settings.model_copy(
        update={
            "twilio_base_url": emulator.base_url,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
        }
    )
    sync_college(live, tmp_path / "extract", n, with_phones=True)
    with Session(engine) as s:
        t1 = s.execute(select(Person).where(Person.sis_id == "T1")).scalar_one()
        s.add(SenderNumber(staff_person_id=t1.id, e164="+12125550101", status="active"))
        s.commit()
    for i in range(n):
        emulator.inject(f"+1212555{1000 + i:04d}", "+12125550101", f"reply {i}")
    smtp.handler.delay_s = 0.1
    smtp.handler.record_before_reply = server_had_it
    env = nudge_env(live)
    with spawned("poll", env=env) as poller:
        wait_for("some notifications", lambda: len(smtp.messages) >= 8, timeout=90)
        os.kill(poller.pid, signal.SIGKILL)
        poller.wait(timeout=10)
    smtp.handler.delay_s = 0.0
    # The dead poller's email in flight is settled once the margin has passed: run the next
    # poll that much later on its own clock instead of sleeping through the margin.
    later = IN_FLIGHT_MARGIN + timedelta(seconds=0.5)
    again = run_poll(live, env=make_env(settings=live, now=lambda: datetime.now(UTC) + later))
    assert again["new"] == 0 and not again["errors"]  # every reply was stored before the kill
    per_reply = Counter(
        found.group(1)
        for mail in smtp.messages
        for found in [re.search(r"^\s+reply (\d+)\s*$", text_of(mail), re.MULTILINE)]
        if found is not None
    )
    assert len(per_reply) == len(smtp.messages) and max(per_reply.values()) == 1
    with Session(engine) as s:
        unknown = list(s.execute(select(Message.id).where(Message.status == "unknown")).scalars())
        notified = s.execute(
            select(func.count()).where(InboundMessage.notified.is_(True))  # type: ignore[attr-defined]
        ).scalar_one()
    assert len(unknown) <= 1  # at most the one in flight, never resent by itself
    assert notified == n - len(unknown)  # an unknown one is not claimed as delivered
    seen_ids = {m["Message-ID"] for m in smtp.messages}
    lost = [i for i in unknown if message_id_for(f"m{i}", live.mail_from) not in seen_ids]
    assert len(smtp.messages) == n - len(lost)
    for message_id in lost:  # the admin resends what the server's log does not show
        code, resent = nudge("outbox", "resend", str(message_id), env=env)
        assert (code, resent["emails_sent"]) == (0, 1)
    assert len(smtp.messages) == n
    assert len({m["Message-ID"] for m in smtp.messages}) == n


# --- poison records ------------------------------------------------------------------------


def test_line_breaks_and_nul_in_names_fail_nothing_but_themselves(
    settings: Settings, engine: Engine, emulator: Any, smtp: Any, tmp_path: Path, make_env: Any
) -> None:
    live = settings.model_copy(
        update={
            "twilio_base_url": emulator.base_url,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "sender_mps": 1000.0,
            "account_mps": 1000.0,
            "chunk_size": 3,
        }
    )
    sync_college(live, tmp_path / "extract", 6, with_phones={0})  # S0 by SMS, the rest email
    nul = "\x00" if engine.dialect.name == "sqlite" else ""  # PostgreSQL text cannot hold NUL
    with Session(engine) as s:
        people = {p.sis_id: p for p in s.execute(select(Person)).scalars()}
        people["T1"].first_name = "Ann\nBcc: x@evil.example"
        people["S0"].first_name = f"Bo\r\nBcc: y@evil.example{nul}"
        people["S1"].last_name = f"Li{nul}\nX-Injected: 1"
        people["S2"].email = "s2@college.edu\nBcc: z@evil.example"  # refused alone
        for p in people.values():
            s.add(p)
        s.commit()
    result = run_campaign(
        CampaignRequest(
            sender_id="T1",
            message="Hi {first_name} {last_name}, see you Monday.",
            audience=AudienceFilter(caseload=["T1"]),
        ),
        settings=live,
        env=make_env(settings=live),
    )
    assert result["status"] == "completed", result
    assert result["result"]["by_status"] == {"sms:sent": 1, "email:sent": 4, "email:failed": 1}
    assert sorted(received_per_address(smtp)) == sorted(f"s{i}@college.edu" for i in (1, 3, 4, 5))
    for mail in smtp.messages:
        assert mail["Bcc"] is None and mail["X-Injected"] is None
        assert "\n" not in mail["Subject"] and "\x00" not in mail["Subject"]
    with Session(engine) as s:
        [failed] = s.execute(select(Message).where(Message.status == "failed")).scalars()
        assert "address" in (failed.error_message or "")
    # The student with the poisoned name replies: the staff member is told, polls go on.
    with Session(engine) as s:
        t1_number = s.execute(select(SenderNumber.e164)).scalar_one()
    emulator.inject("+12125551000", t1_number, "who is this?\nBcc: nope")
    polled = run_poll(live, env=make_env(settings=live))
    assert (polled["new"], polled["notifications_sent"], polled["errors"]) == (1, 1, [])
    notice = smtp.messages[-1]
    assert notice["Subject"].startswith("New reply from Bo Bcc: y@evil.example")
    assert notice["Bcc"] is None and received_per_address(smtp)["t1@college.edu"] == 1
    # An unrelated campaign still goes out through the dispatcher.
    later = plan(live, "Second note for {first_name}.")
    dispatched = run_dispatch(live, env=make_env(settings=live))
    assert dispatched["errors"] == []
    with Session(engine) as s:
        assert s.get(Campaign, later).status == "completed"  # type: ignore[union-attr]


# --- send-time permission -----------------------------------------------------------------------


def test_a_scheduled_campaign_whose_sender_lost_the_role_sends_nothing(
    settings: Settings, engine: Engine, emulator: Any, smtp: Any, tmp_path: Path, make_env: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    live = settings.model_copy(
        update={
            "twilio_base_url": emulator.base_url,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "sender_mps": 1000.0,
            "account_mps": 1000.0,
        }
    )
    sync_college(live, tmp_path / "extract", 8, with_phones=True)
    configure(live, permitted_roles=["Texting"])
    campaign_id = plan(
        live, "Hi {first_name}, scheduled note.", send_at=datetime.now(UTC) + timedelta(hours=1)
    )
    # The SIS drops T1's role before the campaign is due.
    with Session(engine) as s:
        t1 = s.execute(select(Person).where(Person.sis_id == "T1")).scalar_one()
        t1.roles = []
        s.add(t1)
        assert not s.execute(select(RoleGrant)).first()
        s.commit()
    later = make_env(settings=live, now=lambda: datetime.now(UTC) + timedelta(hours=2))
    dispatched = run_dispatch(live, env=later)
    assert dispatched["started"] == [campaign_id]
    assert emulator.counters()["messages_created"] == 0 and smtp.messages == []
    assert statuses(engine, campaign_id) == {"refused": 16}  # 8 notices and 8 texts
    with Session(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == "refused"
        reasons = set(
            s.execute(select(Message.reason).where(Message.campaign_id == campaign_id)).scalars()
        )
    assert reasons == {"sender_not_permitted"}
    assert "may not send texts" in (campaign.refused_reason or "")


# --- pacing across processes ------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.skipif(not POSTGRES_URL, reason="NUDGE_TEST_POSTGRES_URL not set (CI sets it)")
def test_three_workers_pace_one_sender_within_its_limit(
    settings: Settings, emulator: Any, tmp_path: Path
) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("several worker processes share the pace on PostgreSQL")
    n, limit = 60, 10.0
    body = "Paced note."
    live = settings.model_copy(
        update={
            "twilio_base_url": emulator.base_url,
            "sender_mps": limit,
            "account_mps": 1000.0,
            "send_concurrency": 8,
            "chunk_size": 10,
        }
    )
    sync_college(live, tmp_path / "extract", n, with_phones=True)
    campaign_id = plan(live, body)
    env = nudge_env(live)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "nudge", "work", "--campaign", str(campaign_id), "--json"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    reports = []
    for process in procs:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["chunks"] >= 1 for r in reports), reports  # all three took part
    assert texts_per_number(emulator, body) == Counter(
        {f"+1212555{1000 + i:04d}": 1 for i in range(n)}
    )
    created = sorted(emulator.message_record(m)["created_at"] for m in all_outbound_sids(emulator))
    assert len(created) == 2 * n  # notice + text each
    busiest = max(sum(1 for t in created if start <= t < start + 1.0) for start in created)
    assert busiest <= limit
    span = created[-1] - created[0]
    assert (len(created) - 1) / span >= 0.9 * limit


def all_outbound_sids(emulator: Any) -> list[str]:
    sids: list[str] = []
    url = f"/2010-04-01/Accounts/{SID}/Messages.json?PageSize=1000"
    with httpx.Client(base_url=emulator.base_url, auth=(SID, "x"), timeout=30) as client:
        while url:
            page = client.get(url).json()
            sids += [m["sid"] for m in page["messages"] if m["direction"] == "outbound-api"]
            url = page["next_page_uri"]
    return sids
