"""Scale-out, for real: a Prefect server on PostgreSQL, deployments from prefect.yaml, three
process workers, the emulator in its own process, nudge on PostgreSQL — and one worker killed
mid-campaign. Every eligible student still gets exactly one text, the quota holds, and
nothing is left ``sending``. Also: a plain worker stopped with SIGTERM finishes its chunk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from models.db import make_engine
from models.messaging import Campaign, Message, QuotaLedger, SendChunk
from nudge.settings import Settings
from sandbox.twilio import EmulatorConfig, run_emulator
from tasks.campaigns import plan_campaign
from tests.conftest import POSTGRES_URL
from tests.e2e.stack import REPO, fresh_database, prefect_env, prefect_server, workers
from tests.helpers import populate_college

pytestmark = [pytest.mark.slow]

STUDENTS = 5000
QUOTA = 9000  # notice + message = 2 per student: 4,500 students by SMS, the rest by email
BODY = "Scale test: registration closes Friday."


def populate(settings: Settings, folder: Path, n: int) -> None:
    populate_college(settings, folder, n, monthly_limit=QUOTA)


def campaign_texts(emulator: Any) -> dict[str, int]:
    import httpx

    sid = "AC" + "0" * 32
    seen: dict[str, int] = {}
    url = f"/2010-04-01/Accounts/{sid}/Messages.json?PageSize=1000"
    with httpx.Client(base_url=emulator.base_url, auth=(sid, "x"), timeout=30) as client:
        while url:
            page = client.get(url).json()
            for m in page["messages"]:
                if m["body"] == BODY:
                    seen[m["to"]] = seen.get(m["to"], 0) + 1
            url = page["next_page_uri"]
    return seen


def nudge_env(settings: Settings, emulator_url: str) -> dict[str, str]:
    return {
        "NUDGE_DATABASE_URL": settings.database_url,
        "NUDGE_TWILIO_BASE_URL": emulator_url,
        "NUDGE_OUTBOX_DIR": str(settings.outbox_dir),
        "NUDGE_SENDER_MPS": "1000",
        "NUDGE_ACCOUNT_MPS": "1000",
        "NUDGE_SEND_CONCURRENCY": "8",
        "NUDGE_CHUNK_SIZE": "100",
        "NUDGE_CLAIM_STALE_S": "5",
        # A dead worker's last requests are reconciled once they cannot be in flight any
        # more: short timeouts keep that wait (timeouts x attempts + backoff) to ~20 s.
        "NUDGE_TWILIO_TIMEOUT_S": "3",
        "NUDGE_TWILIO_MAX_RETRIES": "1",
    }


@pytest.fixture
def pg_settings(settings: Settings) -> Settings:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the scale-out topology is nudge on PostgreSQL")
    return settings


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.skipif(not POSTGRES_URL, reason="NUDGE_TEST_POSTGRES_URL not set (CI sets it)")
def test_campaign_across_workers_survives_a_killed_worker(
    pg_settings: Settings, tmp_path: Path
) -> None:
    settings = pg_settings
    t0 = time.monotonic()

    def mark(what: str) -> None:
        print(f"[scale-out] {time.monotonic() - t0:6.1f} s {what}")  # noqa: T201 - shown with -s

    populate(settings, tmp_path / "extract", STUDENTS)
    mark("populated")
    assert POSTGRES_URL
    config = EmulatorConfig(latency_ms=25, status_delay_ms=0)
    with (
        run_emulator(config, mode="subprocess") as emulator,
        fresh_database(POSTGRES_URL) as prefect_db,
    ):
        base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        with prefect_server(f"{base}/{prefect_db}", tmp_path / "prefect") as server:
            mark("prefect server up")
            server.cli("work-pool", "create", "nudge", "--type", "process")
            server.cli("deploy", "--all", timeout=300)  # prefect.yaml, as an admin would
            mark("deployed")
            plan = plan_campaign.fn(
                CampaignRequest(
                    sender_id="T1", message=BODY, audience=AudienceFilter(caseload=["T1"])
                ),
                settings,
            )
            assert plan.status == "sending" and plan.summary.recipients == STUDENTS
            env = prefect_env(
                server.home,
                server.api_url,
                PREFECT_WORKER_QUERY_SECONDS="1",
                PREFECT_WORKER_PREFETCH_SECONDS="1",
                **nudge_env(settings, emulator.base_url),
            )
            with workers(server, "nudge", 3, env) as pool:
                for _ in range(3):
                    server.cli(
                        "deployment",
                        "run",
                        "campaign-worker/campaign-worker",
                        "--param",
                        f"campaign_id={plan.campaign_id}",
                    )
                victim = wait_for_busy_worker(pool, settings, plan.campaign_id)
                mark("killing a busy worker")
                victim.kill_hard()
                wait_for_campaign(settings, plan.campaign_id, timeout=300)
                mark("campaign completed")
        texts = campaign_texts(emulator)
        created = emulator.counters()["messages_created"]
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        statuses = dict(
            s.execute(select(Message.status, func.count()).group_by(Message.status)).all()
        )
        breakdown = s.execute(
            select(
                Message.kind, Message.channel, Message.status, Message.reason, func.count()
            ).group_by(Message.kind, Message.channel, Message.status, Message.reason)
        ).all()
        used = s.execute(select(func.sum(QuotaLedger.used))).scalar_one()
        # The deployed poll-replies schedule runs too, so some texts are already 'delivered'.
        sms_recipients = s.execute(
            select(func.count()).where(
                Message.kind == "campaign",
                Message.channel == "sms",
                col(Message.status).in_(["sent", "delivered", "undelivered", "failed"]),
            )
        ).scalar_one()
        emailed = s.execute(
            select(func.count()).where(Message.kind == "campaign", Message.channel == "email")
        ).scalar_one()
    engine.dispose()
    assert victim.children, "the killed worker was running a flow run"
    assert "sending" not in statuses and "planned" not in statuses
    assert used <= QUOTA and created == used  # quota never exceeded; every unit is a real SMS
    assert set(texts.values()) == {1}  # nobody texted twice
    assert len(texts) == sms_recipients, breakdown
    assert sms_recipients + emailed == STUDENTS  # everybody reached exactly once


def wait_for_busy_worker(pool: list[Any], settings: Settings, campaign_id: int | None) -> Any:
    """The first worker running a flow run once the campaign is well under way."""
    engine = make_engine(settings.database_url)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            with Session(engine) as s:
                sent = s.execute(
                    select(func.count()).where(
                        Message.campaign_id == campaign_id, Message.status == "sent"
                    )
                ).scalar_one()
                busy_claims = s.execute(
                    select(func.count(func.distinct(SendChunk.claimed_by))).where(
                        SendChunk.status == "claimed"
                    )
                ).scalar_one()
            if sent > 1500 and busy_claims >= 2:
                for worker in pool:
                    if worker.child_pids():
                        return worker
            time.sleep(0.3)
    finally:
        engine.dispose()
    logs = "\n".join(w.log.read_text()[-2000:] for w in pool)
    raise AssertionError(f"the workers never got going:\n{logs}")


def wait_for_campaign(settings: Settings, campaign_id: int | None, *, timeout: float) -> None:
    engine = make_engine(settings.database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with Session(engine) as s:
                status = s.execute(
                    select(Campaign.status).where(Campaign.id == campaign_id)
                ).scalar_one()
            if status == "completed":
                return
            time.sleep(1)
    finally:
        engine.dispose()
    raise AssertionError(f"campaign {campaign_id} still {status} after {timeout} s")


def test_sigterm_lets_a_plain_worker_finish_its_chunk(settings: Settings, tmp_path: Path) -> None:
    n = 120
    populate(settings, tmp_path / "extract", n)
    with run_emulator(EmulatorConfig(latency_ms=20, status_delay_ms=0)) as emulator:
        plan = plan_campaign.fn(
            CampaignRequest(sender_id="T1", message=BODY, audience=AudienceFilter(caseload=["T1"])),
            settings.model_copy(update={"chunk_size": 30}),  # four chunks of 30 students
        )
        env = {
            **os.environ,
            **nudge_env(settings, emulator.base_url),
            "NUDGE_SEND_CONCURRENCY": "2",
            "NUDGE_CHUNK_SIZE": "30",
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "nudge", "work", "--campaign", str(plan.campaign_id), "--json"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        engine = make_engine(settings.database_url)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with Session(engine) as s:
                    sent = s.execute(
                        select(func.count()).where(Message.status == "sent")
                    ).scalar_one()
                if sent:
                    break
                time.sleep(0.1)
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            report = json.loads(out.strip().splitlines()[-1])
            assert report["stopped_by_signal"] is True
            with Session(engine) as s:
                total_chunks = s.execute(select(func.count()).select_from(SendChunk)).scalar_one()
            # It stopped early, after finishing the chunk it held.
            assert 1 <= report["chunks"] < total_chunks
            with Session(engine) as s:
                chunks = dict(
                    s.execute(
                        select(SendChunk.status, func.count()).group_by(SendChunk.status)
                    ).all()
                )
                sending = s.execute(
                    select(func.count()).where(Message.status == "sending")
                ).scalar_one()
            assert "claimed" not in chunks and sending == 0
            assert chunks.get("done") == report["chunks"]
            # Another worker completes the campaign; each student still texted exactly once.
            subprocess.run(
                [sys.executable, "-m", "nudge", "work", "--json"],
                env=env,
                cwd=REPO,
                check=True,
                capture_output=True,
                timeout=120,
            )
            assert campaign_texts(emulator) == {f"+1212867{i:04d}": 1 for i in range(n)}
        finally:
            if worker.poll() is None:
                worker.kill()
            engine.dispose()
