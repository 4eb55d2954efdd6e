"""The reconciliation sweep against a fake gateway: what it lists, what it counts as late,
where the cursor stays, the lease; and the ``reconcile-replies`` flow as Prefect runs it.

The fake gateway (``tests/flows/test_poll_replies.py``) serves its messages newest first by
``DateSent``, as Twilio documents; a reply that Twilio lists late is simply absent from the
gateway the earlier polls were given.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.twilio.errors import RetriableError
from flows.poll_replies import run_poll
from flows.reconcile_replies import SWEEP_KEYS, run_sweep
from models.leases import acquire_lease, read_cursor
from models.messaging import InboundMessage
from nudge.settings import Settings
from tasks import sweep
from tasks.poll_lease import LEASE
from tasks.poll_options import PollOptions
from tasks.replies import CURSOR
from tests.flows.test_poll_replies import NOW, FakeGateway, make_env, sms


def stored_sids(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return set(s.execute(select(InboundMessage.provider_sid)).scalars())


def cursor(engine: Engine) -> datetime | None:
    with Session(engine) as s:
        return read_cursor(session=s, name=CURSOR)


@pytest.fixture
def polled(settings: Settings, engine: Engine, tmp_path: Path) -> dict[str, Any]:
    """Polls ran at 19:58 and 20:00; a reply sent at 19:40 was listed by Twilio only after
    them (so neither poll saw it), and the 20:00 poll's newer traffic moved the cursor."""
    history = [sms(100 + i, NOW - timedelta(hours=3, minutes=i), inbound=False) for i in range(5)]
    early = [sms(1, NOW - timedelta(minutes=8), inbound=True)]
    newer = [sms(2, NOW - timedelta(minutes=1), inbound=True)]
    late = sms(3, NOW - timedelta(minutes=20), inbound=True)
    run_poll(settings, env=make_env(settings, engine, tmp_path, FakeGateway(history + early)))
    run_poll(
        settings, env=make_env(settings, engine, tmp_path, FakeGateway(history + early + newer))
    )
    everything = history + early + newer + [late]
    # Once Twilio lists it, the next poll still does not: it is 20 minutes behind the cursor.
    again = run_poll(settings, env=make_env(settings, engine, tmp_path, FakeGateway(everything)))
    assert again["new"] == 0 and late.sid not in stored_sids(engine)
    return {"everything": everything, "late": late, "cursor": cursor(engine)}


def test_the_sweep_stores_what_the_polls_scanned_past_and_leaves_the_cursor(
    settings: Settings, engine: Engine, tmp_path: Path, polled: dict[str, Any]
) -> None:
    gateway = FakeGateway(polled["everything"])
    result = run_sweep(
        settings, env=make_env(settings, engine, tmp_path, gateway), hours=2, lease_wait_s=0
    )
    assert set(SWEEP_KEYS) <= set(result) and result["errors"] == []
    # The whole window is listed, down to the first message before its start (and no
    # further: the texts of 3 hours ago stop it).
    assert (result["scanned"], gateway.listed) == (3, 3 + 1)
    assert (result["inbound"], result["already_stored"], result["new"]) == (3, 2, 1)
    assert (result["late_found"], result["max_lag_s"], result["median_lag_s"]) == (1, 1200, 1200)
    assert result["lag_buckets"] == {"15-30 min": 1}
    assert polled["late"].sid in stored_sids(engine)
    assert cursor(engine) == polled["cursor"] == NOW - timedelta(minutes=1)
    assert result["cursor"] == polled["cursor"].isoformat()
    # A second sweep finds nothing more.
    again = run_sweep(
        settings,
        env=make_env(settings, engine, tmp_path, FakeGateway(polled["everything"])),
        lease_wait_s=0,
    )
    assert (again["new"], again["late_found"], again["max_lag_s"]) == (0, 0, 0)
    assert again["already_stored"] == 3 and again["lag_buckets"] == {}


def test_missing_but_ahead_of_the_polls_is_new_not_late(
    settings: Settings, engine: Engine, tmp_path: Path, polled: dict[str, Any]
) -> None:
    """A reply inside the poll's overlap is one the next poll would list: stored, not late."""
    fresh = sms(4, NOW - timedelta(minutes=3), inbound=True)
    gateway = FakeGateway([*polled["everything"], fresh])
    result = run_sweep(
        settings, env=make_env(settings, engine, tmp_path, gateway), hours=2, lease_wait_s=0
    )
    assert (result["new"], result["late_found"]) == (2, 1)
    assert {polled["late"].sid, fresh.sid} <= stored_sids(engine)


def test_the_window_is_the_only_stop(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    """The 48-hour sweep lists two days (paging from the first day's GMT date), no more; before any
    poll there is no horizon, so nothing counts as late."""
    messages = [sms(i, NOW - timedelta(hours=i), inbound=True) for i in range(1, 60)]
    gateway = FakeGateway(messages)
    env = make_env(settings, engine, tmp_path, gateway)
    result = run_sweep(settings, env=env, hours=48, lease_wait_s=0)
    assert (result["scanned"], result["new"], result["late_found"]) == (48, 48, 0)
    assert gateway.listed == 48 + 1
    assert (result["since_day"], result["horizon"]) == ("2026-02-28", None)
    assert cursor(engine) is None


def test_a_held_lease_skips_the_sweep_and_a_poll_that_ends_lets_it_run(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    gateway = FakeGateway([sms(1, NOW - timedelta(minutes=1), inbound=True)])
    env = make_env(settings, engine, tmp_path, gateway)
    with Session(engine) as s:
        assert acquire_lease(
            session=s, name=LEASE, holder="a-poll", now=NOW, ttl=timedelta(minutes=3)
        )
    skipped = run_sweep(settings, env=env, lease_wait_s=0)
    assert skipped["skipped"] and skipped["errors"] == [] and gateway.list_calls == 0
    assert {k: skipped[k] for k in SWEEP_KEYS} == dict.fromkeys(SWEEP_KEYS, 0)

    # While it waits, the poll finishes (its lease goes stale here): the sweep then runs.
    waits: list[float] = []

    def poll_ends(seconds: float) -> None:
        waits.append(seconds)
        env.now = lambda: NOW + timedelta(minutes=4)

    assert sweep.wait_for_lease(env, 30, sleep=poll_ends) and waits == [1.0]


def test_a_failed_listing_is_an_error_and_the_waiting_emails_still_go(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    class Down(FakeGateway):
        async def list_messages(self, **_: Any) -> AsyncGenerator[Any, None]:
            raise RetriableError("Twilio is down")
            yield  # pragma: no cover - makes this an async generator

    result = run_sweep(settings, env=make_env(settings, engine, tmp_path, Down([])), lease_wait_s=0)
    assert result["errors"] == ["sweep: Twilio is down"]
    assert "notifications_sent" in result and result["late_found"] == 0
    with Session(engine) as s:  # the lease is let go
        assert acquire_lease(session=s, name=LEASE, holder="next", now=NOW, ttl=timedelta(0))


def test_the_window_must_be_positive_and_at_most_a_month(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    env = make_env(settings, engine, tmp_path, FakeGateway([]))
    for hours in (0, -1, 31 * 24 + 1):
        with pytest.raises(ValueError, match="hours must be"):
            run_sweep(settings, env=env, hours=hours)


def test_the_lag_artifact_masks_numbers_and_never_shows_bodies(
    settings: Settings, engine: Engine, tmp_path: Path, polled: dict[str, Any]
) -> None:
    env = make_env(settings, engine, tmp_path, FakeGateway(polled["everything"]))
    swept = sweep.sweep_inbound.fn(env, timedelta(hours=2), PollOptions())
    assert [late.sid for late in swept.late] == [polled["late"].sid]
    from tasks.replies import store_inbound

    stored = store_inbound.fn(env, swept.missing)
    result = {"hours": 2, "new": stored.new} | sweep.figures(swept, stored)
    text = sweep.lag_markdown(result, swept.late)
    assert "| 15-30 min | 1 |" in text and "20 min 00 s" in text
    assert "+1******1000" in text and "+1******0101" in text
    assert "+12125551000" not in text and "message 3" not in text
    assert polled["late"].sid in text
    quiet = sweep.lag_markdown({**result, "late_found": 0}, [])
    assert "No late reply in this window" in quiet


def test_lag_buckets_are_ordered_and_hold_only_what_is_there() -> None:
    assert sweep.lag_buckets([400, 700, 800, 5000, 200_000]) == {
        "< 10 min": 1,
        "10-15 min": 2,
        "1-2 h": 1,
        ">= 24 h": 1,
    }


# --- the flow, as Prefect runs it ----------------------------------------------------------


@pytest.fixture
def flow_settings(
    settings: Settings, emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Settings]:
    """Flows read settings from the environment, as deployments do."""
    from nudge.settings import get_settings

    monkeypatch.setenv("NUDGE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NUDGE_TWILIO_BASE_URL", emulator.base_url)
    monkeypatch.setenv("NUDGE_OUTBOX_DIR", str(tmp_path / "outbox"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def artifacts(key: str) -> list[Any]:
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


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_flow_shows_the_lag_artifact_and_fails_with_the_cause(
    prefect_harness: None,
    flow_settings: Settings,
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.reconcile_replies import reconcile_replies
    from nudge.settings import get_settings

    done = reconcile_replies(hours=48, return_state=True)
    assert done.is_completed(), done
    assert done.result()["scanned"] == 0
    shown = artifacts(sweep.ARTIFACT_KEY)[0]
    assert shown.flow_run_id == done.state_details.flow_run_id
    assert "No late reply in this window" in str(shown.data)

    monkeypatch.setenv("NUDGE_TWILIO_BASE_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("NUDGE_TWILIO_TIMEOUT_S", "2")
    get_settings.cache_clear()
    failed = reconcile_replies(return_state=True)
    assert failed.is_failed(), failed
    assert "SweepFailed: sweep: " in str(failed.message) and "127.0.0.1:9" in str(failed.message)
