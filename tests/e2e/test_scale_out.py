"""Scale-out, for real, set up exactly as the README says ("Deployments on a work pool",
"Scale-out"): a Prefect server on PostgreSQL, the README's own commands (work pool,
``prefect deploy --all``, the zombie-run automation from its YAML block, one default-queue
worker and three campaign workers), ``NUDGE_CAMPAIGN_FANOUT=3`` and nudge's default heartbeat
and stale times; the emulator in its own process, nudge on PostgreSQL. A campaign started
like a user starts one (``prefect deployment run send-campaign/send-campaign``) is shared by
the three campaign workers; one of them is killed mid-campaign: the campaign still completes
within ``claim_stale_s`` + 30 s, every eligible student gets exactly one text, the quota
holds, the killed run ends Crashed and poll-replies keeps its schedule. Also: a plain worker
stopped with SIGTERM finishes its chunk."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from models.db import make_engine
from models.messaging import Campaign, Message, QuotaLedger, SendChunk
from nudge import wiring
from nudge.settings import Settings
from sandbox.twilio import EmulatorConfig, run_emulator
from tasks.campaigns import plan_campaign
from tests.conftest import POSTGRES_URL
from tests.e2e.stack import (
    REPO,
    PrefectServer,
    Worker,
    fresh_database,
    own_host_prefix,
    prefect_env,
    prefect_server,
    watch_children,
    workers,
)
from tests.helpers import populate_college

STUDENTS = 4000
QUOTA = 7000  # notice + message = 2 per student: 3,500 students by SMS, the rest by email
BODY = "Scale test: registration closes Friday."
FANOUT = 3
DEFAULTS = Settings()  # the README's defaults: heartbeat_s, claim_stale_s, timeouts


def populate(settings: Settings, folder: Path, n: int) -> None:
    populate_college(settings, folder, n, monthly_limit=QUOTA)


def campaign_texts(emulator: Any) -> dict[str, int]:
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
        # The emulator is not a registered 10DLC number: at the default 10 msg/s (shared by
        # every worker) the 7,000 texts would take 12 minutes; at 300 msg/s (CPU allows
        # ~200 here) about 35 s, long enough to kill a worker mid-campaign.
        "NUDGE_SENDER_MPS": "300",
        "NUDGE_ACCOUNT_MPS": "300",
        "NUDGE_SEND_CONCURRENCY": "8",
    }


def readme_commands() -> tuple[list[list[str]], list[str], list[str]]:
    """The README's commands ("Deployments on a work pool"): the one-time setup, and the
    arguments of ``prefect worker start`` for the default-queue and the campaign workers."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("**Deployments on a work pool.**") : text.index("**Scale-out**")]
    commands = [
        shlex.split(line.split("#", 1)[0])[1:]
        for block in re.findall(r"```console\n(.*?)```", section, re.DOTALL)
        for line in block.splitlines()
        if line.startswith("prefect ")
    ]
    starts = [c[2:] for c in commands if c[:2] == ["worker", "start"]]
    (default,) = [c for c in starts if "default" in c]
    (campaigns,) = [c for c in starts if "campaigns" in c]
    return [c for c in commands if c[:2] != ["worker", "start"]], default, campaigns


def readme_yaml(marker: str) -> str:
    """The YAML block the README puts after ``<!-- marker -->``, as the user saves it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {re.escape(marker)} -->\s*```yaml\n(.*?)```", text, re.DOTALL)
    assert found, marker
    return found.group(1)


def set_up_as_the_readme_says(server: PrefectServer, folder: Path) -> tuple[list[str], list[str]]:
    """Run the README's one-time commands against ``server``; returns the worker arguments."""
    setup, default, campaigns = readme_commands()
    automation = folder / "crash-zombie-runs.yaml"
    automation.write_text(readme_yaml("automation: crash-zombie-runs.yaml"), encoding="utf-8")
    for command in setup:
        args = [str(automation) if a == automation.name else a for a in command]
        server.cli(*args, timeout=300)
    return default, campaigns


@pytest.fixture
def pg_settings(settings: Settings) -> Settings:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the scale-out topology is nudge on PostgreSQL")
    return settings


@pytest.mark.slow
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
            default_args, campaign_args = set_up_as_the_readme_says(server, tmp_path)
            mark("work pool, deployments and automation created")
            env = prefect_env(
                server.home,
                server.api_url,
                # Test speed only: workers ask for runs every second (default 10 s).
                PREFECT_WORKER_QUERY_SECONDS="1",
                NUDGE_CAMPAIGN_FANOUT=str(FANOUT),
                **nudge_env(settings, emulator.base_url),
            )
            # Each campaign worker on a host of its own where the system allows it, as the
            # README draws them: the killed one's claims are then taken over once stale
            # (NUDGE_CLAIM_STALE_S), not at once as those of a dead process of this host.
            own_host = own_host_prefix()
            mark(f"campaign workers on {'hosts of their own' if own_host else 'this host'}")
            with (
                workers(server, 1, env, *default_args, name="default") as (scheduler,),
                workers(
                    server, FANOUT, env, *campaign_args, name="campaigns", own_host=own_host
                ) as pool,
                watch_children([scheduler, *pool]),
            ):
                server.cli(
                    "deployment",
                    "run",
                    "send-campaign/send-campaign",
                    "--params",
                    json.dumps(
                        {
                            "Campaign": {
                                "sender": "T1",
                                "message": BODY,
                                "audience": {"caseload": ["T1"]},
                            }
                        }
                    ),
                )
                mark("send-campaign started")
                campaign_id = wait_for_sending_campaign(settings)
                victim = wait_for_shares(pool, settings, campaign_id)
                mark(f"every campaign worker sent a share; killing {victim.name}")
                killed_at = datetime.now(UTC)
                kill_clock = time.monotonic()
                victim.kill_hard()
                abandoned = [
                    chunk
                    for chunk, holder in chunks_held(settings, campaign_id).items()
                    if worker_of(holder, pool) is victim
                ]
                wait_for_campaign(settings, campaign_id, timeout=DEFAULTS.claim_stale_s + 30)
                to_completed = time.monotonic() - kill_clock
                mark(f"campaign completed {to_completed:.1f} s after the kill")
                finishers = chunks_done_by(settings, abandoned)
                for chunk, (holder, claimed_at) in finishers.items():
                    # Stale 15 s after the kill; its texts left `sending` are settled once
                    # none can be in flight (send deadline + Twilio timeout + 5 s).
                    taken = (claimed_at - killed_at).total_seconds()
                    mark(f"{victim.name}'s chunk {chunk} finished by {holder}, last claimed"
                         f" {taken:.1f} s after the kill")  # fmt: skip
                killed = runs_of(server, victim.children)
                assert killed, "the killed worker was running a flow run"
                killed = wait_for_crashed(server, killed, timeout=150)
                mark(f"killed run(s) Crashed {time.monotonic() - kill_clock:.1f} s after the kill")
                polls = wait_for_poll_after(server, killed_at, timeout=90)
                mark(
                    f"{len(polls)} poll-replies run(s) due since the kill; latest ran"
                    f" {lateness(polls[-1]).total_seconds():.1f} s after its scheduled time"
                )
                campaign_runs = [
                    *deployment_runs(server, "send-campaign/send-campaign"),
                    *deployment_runs(server, "campaign-worker/campaign-worker"),
                ]
                all_polls = deployment_runs(server, "poll-replies/poll-replies")
                crashed = _api(
                    server,
                    "POST",
                    "/flow_runs/filter",
                    json={"flow_runs": {"state": {"type": {"any_": ["CRASHED"]}}}},
                )
                shares = Counter(
                    owner.name if (owner := worker_of(holder, pool)) else holder
                    for holder in done_chunk_holders(settings, campaign_id)
                )
                mark(f"done chunks per worker: {dict(shares)}")
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
    # Fan-out spread over the workers: each campaign worker sent chunks of its own.
    assert all(shares[w.name] >= 1 for w in pool), shares
    # The chunk the killed worker was on was taken over and finished by another worker, and
    # the campaign completed within the stale time plus 30 s of the kill.
    assert abandoned, "the killed worker held a chunk"
    assert set(finishers) == set(abandoned), finishers
    for chunk, (holder, _) in finishers.items():
        assert worker_of(holder, pool) not in (None, victim), (chunk, holder)
    assert to_completed <= DEFAULTS.claim_stale_s + 30
    assert "sending" not in statuses and "planned" not in statuses
    assert used <= QUOTA and created == used  # quota never exceeded; every unit is a real SMS
    assert set(texts.values()) == {1}  # nobody texted twice
    assert len(texts) == sms_recipients, breakdown
    assert sms_recipients + emailed == STUDENTS  # everybody reached exactly once
    # The fan-out: send-campaign and FANOUT - 1 campaign-worker runs on the campaigns queue,
    # one on each campaign worker; the killed one was marked Crashed by the zombie-run
    # automation (its worker died with it: nobody else could), the others Completed.
    assert len(campaign_runs) == FANOUT, campaign_runs
    assert {run["work_queue_name"] for run in campaign_runs} == {"campaigns"}
    assert {worker_of(run["infrastructure_pid"], pool) for run in campaign_runs} == set(pool)
    killed_ids = {run["id"] for run in killed}
    assert killed_ids <= {run["id"] for run in campaign_runs}
    for run in campaign_runs:
        expected = "CRASHED" if run["id"] in killed_ids else "COMPLETED"
        assert run["state_type"] == expected, run
    for run in killed:
        assert "No heartbeat" in run["state"]["message"], run["state"]
    # The automation crashed nothing else (the runs that kept beating, the finished ones).
    assert {run["id"] for run in crashed} == killed_ids
    # poll-replies kept its schedule: every run due since the kill ran on time and completed;
    # none is left Running.
    for run in polls:
        assert run["state_type"] == "COMPLETED", run
        assert run["work_queue_name"] == "default", run
        assert lateness(run) < timedelta(seconds=20), run
    an_interval_ago = datetime.now(UTC) - timedelta(seconds=60)
    for run in all_polls:
        if run["state_type"] == "RUNNING":
            assert _when(run["start_time"]) > an_interval_ago, run


def test_readme_workers_and_zombie_automation_match_prefect_yaml() -> None:
    """The README's worker commands poll the queues prefect.yaml puts the deployments on, and
    its zombie-run automation watches exactly the runs that beat every 30 s, no others."""
    import yaml
    from prefect.events.schemas.automations import AutomationCore
    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in spec["deployments"]}
    _, default_args, campaign_args = readme_commands()
    queue = {args[args.index("--work-queue") + 1] for args in (default_args, campaign_args)}
    assert queue == {"default", "campaigns"} and "--limit" not in default_args
    assert campaign_args[campaign_args.index("--limit") + 1] == "1"
    for name, deployment in deployments.items():
        expected = "campaigns" if name in ("send-campaign", "campaign-worker") else "default"
        assert deployment["work_pool"]["work_queue_name"] == expected, name
        assert (
            deployment["work_pool"]["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]
            == "30"
        )
        assert "heartbeat-30s" in deployment["tags"], name
    # A Prefect slot held by a dead run must never hold up replies or due campaigns.
    assert "concurrency_limit" not in deployments["poll-replies"]
    assert "concurrency_limit" not in deployments["dispatch-due"]

    automation = AutomationCore.model_validate(
        yaml.safe_load(readme_yaml("automation: crash-zombie-runs.yaml"))
    )
    (action,) = automation.actions
    assert action.type == "change-flow-run-state" and action.state.value == "CRASHED"
    fields = {"type", "match", "match_related", "after", "expect", "for_each", "posture",
              "threshold", "within"}  # fmt: skip
    trigger = EventTrigger.model_validate(
        automation.trigger.model_dump(mode="json", include=fields)
    )
    assert trigger.posture == "Proactive" and trigger.within == timedelta(seconds=3 * 30)

    def event(name: str, *tags: str) -> ReceivedEvent:
        return ReceivedEvent(
            occurred=datetime.now(UTC),
            event=name,
            resource={"prefect.resource.id": "prefect.flow-run.6f1c6b2e-0000-4000-8000-0000000001"},
            related=[
                {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
                for tag in tags
            ],
            id=uuid4(),
        )

    assert trigger.covers(event("prefect.flow-run.heartbeat", "heartbeat-30s"))
    assert trigger.covers(event("prefect.flow-run.Completed", "heartbeat-30s", "other"))
    # A run that beats every 180 s (started by `nudge send`, say) is not watched.
    assert not trigger.covers(event("prefect.flow-run.heartbeat"))
    assert not trigger.covers(event("prefect.flow-run.heartbeat", "other"))


# -- the Prefect API ---------------------------------------------------------------------


def _api(server: PrefectServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{server.api_url}{path}", timeout=30, **kwargs)
    response.raise_for_status()
    return response.json()


def deployment_runs(server: PrefectServer, name: str) -> list[dict[str, Any]]:
    """Flow runs of the deployment ``flow/deployment`` (scheduled ones included)."""
    deployment = _api(server, "GET", f"/deployments/name/{name}")
    return list(
        _api(
            server,
            "POST",
            "/flow_runs/filter",
            json={"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}, "limit": 200},
        )
    )


def runs_of(server: PrefectServer, pids: list[int]) -> list[dict[str, Any]]:
    """The flow runs whose process (``infrastructure_pid``) is one of ``pids``."""
    runs = _api(server, "POST", "/flow_runs/filter", json={"limit": 200})
    return [r for r in runs if pid_of(r.get("infrastructure_pid")) in set(pids)]


def wait_for_crashed(
    server: PrefectServer, runs: list[dict[str, Any]], *, timeout: float
) -> list[dict[str, Any]]:
    """Until every run in ``runs`` is Crashed; returns them as they are then."""
    deadline = time.monotonic() + timeout
    while True:
        now = [_api(server, "GET", f"/flow_runs/{r['id']}") for r in runs]
        states = {r["id"]: r["state_type"] for r in now}
        if set(states.values()) == {"CRASHED"}:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"killed runs not Crashed after {timeout} s: {states}")
        time.sleep(2)


def wait_for_poll_after(
    server: PrefectServer, since: datetime, *, timeout: float
) -> list[dict[str, Any]]:
    """Until a poll-replies run scheduled after ``since`` has completed; returns every run
    scheduled since then that should have finished by now (due over a minute ago, or done)."""
    deadline = time.monotonic() + timeout
    while True:
        now = datetime.now(UTC)
        due = [
            r
            for r in deployment_runs(server, "poll-replies/poll-replies")
            if since < _when(r["expected_start_time"]) <= now
        ]
        if any(r["state_type"] == "COMPLETED" for r in due):
            return [
                r
                for r in due
                if r["state_type"] == "COMPLETED"
                or _when(r["expected_start_time"]) < now - timedelta(seconds=60)
            ]
        if time.monotonic() > deadline:
            raise AssertionError(f"no poll-replies run completed since the kill: {due}")
        time.sleep(2)


def lateness(run: dict[str, Any]) -> timedelta:
    return _when(run["start_time"]) - _when(run["expected_start_time"])


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# -- nudge's tables ----------------------------------------------------------------------


def wait_for_sending_campaign(settings: Settings, timeout: float = 120) -> int:
    """The campaign send-campaign planned, once it is sending."""
    engine = make_engine(settings.database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with Session(engine) as s:
                row = s.execute(select(Campaign.id, Campaign.status)).first()
            if row is not None and row.status == "sending":
                return int(row.id)
            assert row is None or row.status == "scheduled", row
            time.sleep(0.3)
    finally:
        engine.dispose()
    raise AssertionError("send-campaign never planned the campaign")


def done_chunk_holders(settings: Settings, campaign_id: int) -> list[str]:
    """Who sent each finished chunk (``host:pid:suffix`` of the flow-run process)."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            return [
                str(holder)
                for holder in s.execute(
                    select(SendChunk.claimed_by).where(
                        SendChunk.campaign_id == campaign_id, SendChunk.status == "done"
                    )
                ).scalars()
            ]
    finally:
        engine.dispose()


def worker_of(holder: str | None, pool: list[Worker]) -> Worker | None:
    """The worker whose flow-run process is ``holder``: a chunk's ``claimed_by``
    (``host:pid:suffix``) or a flow run's ``infrastructure_pid`` (the pid)."""
    pid = pid_of(holder)
    return next((w for w in pool if pid in w.seen), None)


def pid_of(holder: str | None) -> int | None:
    """The pid in ``host:pid:suffix`` or in a bare pid."""
    parts = (holder or "").split(":")
    text = parts[0] if len(parts) == 1 else parts[1]
    return int(text) if text.isdigit() else None


def wait_for_shares(pool: list[Worker], settings: Settings, campaign_id: int) -> Worker:
    """Mid-campaign — every campaign worker has finished a chunk, half the chunks are done
    and more are pending: a worker that claimed a chunk less than a second ago, so it is
    surely still on it when killed (the one to kill)."""
    engine = make_engine(settings.database_url)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            with Session(engine) as s:
                now = s.execute(select(func.now())).scalar_one()
                chunks = s.execute(
                    select(SendChunk.status, SendChunk.claimed_by, SendChunk.claimed_at).where(
                        SendChunk.campaign_id == campaign_id
                    )
                ).all()
            done = Counter(worker_of(h, pool) for st, h, _ in chunks if st == "done")
            pending = sum(1 for st, _, _ in chunks if st == "pending")
            halfway = sum(done.values()) >= len(chunks) // 2
            if all(done[w] for w in pool) and halfway and pending >= 2:
                for status, holder, claimed_at in chunks:
                    fresh = claimed_at is not None and now - claimed_at < timedelta(seconds=1)
                    if status == "claimed" and fresh and (victim := worker_of(holder, pool)):
                        return victim
            assert pending, f"the campaign ran out before every worker had a share: {done}"
            show_progress(engine, campaign_id)
            time.sleep(0.1)
    finally:
        engine.dispose()
    logs = "\n".join(w.log.read_text()[-2000:] for w in pool)
    raise AssertionError(f"the workers never got going:\n{logs}")


def chunks_held(settings: Settings, campaign_id: int) -> dict[int, str]:
    """The campaign's claimed chunks and who holds them."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            rows = s.execute(
                select(SendChunk.id, SendChunk.claimed_by).where(
                    SendChunk.campaign_id == campaign_id, SendChunk.status == "claimed"
                )
            ).all()
    finally:
        engine.dispose()
    return {int(chunk_id): str(holder) for chunk_id, holder in rows}


def chunks_done_by(settings: Settings, chunk_ids: list[int]) -> dict[int, tuple[str, datetime]]:
    """Who finished each of these chunks, and when they claimed it (done chunks only)."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            rows = s.execute(
                select(SendChunk.id, SendChunk.claimed_by, SendChunk.claimed_at).where(
                    col(SendChunk.id).in_(chunk_ids), SendChunk.status == "done"
                )
            ).all()
    finally:
        engine.dispose()
    return {int(i): (str(h), at) for i, h, at in rows}


def wait_for_campaign(settings: Settings, campaign_id: int, *, timeout: float) -> None:
    engine = make_engine(settings.database_url)
    deadline = time.monotonic() + timeout
    status = None
    try:
        while time.monotonic() < deadline:
            with Session(engine) as s:
                status = s.execute(
                    select(Campaign.status).where(Campaign.id == campaign_id)
                ).scalar_one()
            if status == "completed":
                return
            show_progress(engine, campaign_id)
            time.sleep(0.5)
        with Session(engine) as s:
            chunks = s.execute(
                select(
                    SendChunk.seq, SendChunk.status, SendChunk.not_before, SendChunk.claimed_by
                ).where(SendChunk.campaign_id == campaign_id, SendChunk.status != "done")
            ).all()
    finally:
        engine.dispose()
    raise AssertionError(f"campaign {campaign_id} still {status} after {timeout} s: {chunks}")


@pytest.mark.slow
def test_sigterm_lets_a_plain_worker_finish_its_chunk(settings: Settings, tmp_path: Path) -> None:
    n = 120
    populate(settings, tmp_path / "extract", n)
    with run_emulator(EmulatorConfig(latency_ms=20, status_delay_ms=0)) as emulator:
        plan = plan_campaign.fn(
            CampaignRequest(sender_id="T1", message=BODY, audience=AudienceFilter(caseload=["T1"])),
            settings.model_copy(update={"chunk_size": 30}),  # four chunks of 30 students
            wiring.engine(settings),
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


def show_progress(engine: Any, campaign_id: int, every_s: float = 5) -> None:
    """Print the campaign's chunks and messages by status (at most every ``every_s``)."""
    if time.monotonic() - _shown[0] < every_s:
        return
    _shown[0] = time.monotonic()
    with Session(engine) as s:
        chunks = s.execute(
            select(SendChunk.status, func.count())
            .where(SendChunk.campaign_id == campaign_id)
            .group_by(SendChunk.status)
        ).all()
        messages = s.execute(
            select(Message.status, func.count())
            .where(Message.campaign_id == campaign_id)
            .group_by(Message.status)
        ).all()
    print(f"  chunks {dict(chunks)} messages {dict(messages)}")  # noqa: T201 - shown with -s


_shown = [0.0]
