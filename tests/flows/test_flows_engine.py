"""The flows as Prefect runs them: artifacts, the UI form of send-campaign, tasks per chunk."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema

from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from flows.send_campaign import send_campaign
from flows.sis_sync import sis_sync
from nudge.settings import Settings, get_settings
from tests.helpers import phone, staff, student, write_extract


def test_send_campaign_form_has_titles_enums_and_lists() -> None:
    schema = parameter_schema(send_campaign.fn).model_dump_for_openapi()
    campaign = schema["definitions"]["CampaignRequest"]
    audience = schema["definitions"]["AudienceFilter"]
    assert campaign["properties"]["message"]["title"] == "Message"
    assert "{preferred_name}" in campaign["properties"]["message"]["description"]
    assert audience["properties"]["tags"]["type"] == "array"
    risk = schema["definitions"]["RiskLevel"]
    assert risk["enum"] == ["low", "medium", "high", "critical"]
    assert audience["properties"]["risk_levels"]["items"] == {"$ref": "#/definitions/RiskLevel"}


@pytest.fixture
def engine_env(
    settings: Settings, emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Settings]:
    """Flows read settings from the environment, as deployments do."""
    for key, value in {
        "NUDGE_DATABASE_URL": settings.database_url,
        "NUDGE_TWILIO_BASE_URL": emulator.base_url,
        "NUDGE_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NUDGE_SENDER_MPS": "1000",
        "NUDGE_ACCOUNT_MPS": "1000",
        "NUDGE_CHUNK_SIZE": "2",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def run_artifacts(flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return list(
            client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
        )


def planned_chunks(settings: Settings, campaign_id: int) -> int:
    from sqlalchemy import func, select
    from sqlmodel import Session

    from models.db import make_engine
    from models.messaging import SendChunk

    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            stmt = select(func.count()).where(SendChunk.campaign_id == campaign_id)
            return int(s.execute(stmt).scalar_one())
    finally:
        engine.dispose()


def task_runs(flow_run_id: Any, name: str, *, at_least: int, timeout: float = 30.0) -> int:
    """How many runs of task ``name`` the flow run made. Task runs reach the server as events,
    a moment after the flow returns: wait until ``at_least`` are there, then count again."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )
    from prefect.events.worker import EventsWorker

    def count() -> int:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=name)),
            )
        return sum(1 for r in runs if r.name.startswith(f"{name}-"))

    EventsWorker.drain_all()
    deadline = time.monotonic() + timeout
    while count() < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # a run beyond the expected ones would have arrived with them
    return count()


def artifacts(keys: list[str]) -> dict[str, Any]:
    """The newest artifact of each key: the session's tests share one Prefect server, and
    an earlier test's campaign 1 left artifacts under the same keys."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)),
            sort=ArtifactSort.CREATED_DESC,
        )
    newest: dict[str, Any] = {}
    for artifact in found:
        newest.setdefault(str(artifact.key), artifact)
    return newest


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sync_and_campaign_as_flow_runs_leave_artifacts(
    prefect_harness: None, engine_env: Settings, tmp_path: Path, emulator: Any
) -> None:
    from models.config import load_config, save_config
    from models.db import make_engine, session_scope

    source = write_extract(
        tmp_path / "x",
        [staff("T1", roles="Texting"), *(student(f"S{i}", advisor_id="T1") for i in range(5))],
        [phone(f"S{i}", f"(212) 555-{1000 + i:04d}") for i in range(5)],
    )
    stats = sis_sync(source=source)
    assert stats["people_created"] == 6
    engine = make_engine(engine_env.database_url)
    with session_scope(engine) as s:
        config = load_config(session=s)
        config.quiet_hours = "off"
        save_config(config, session=s)
    engine.dispose()

    request = CampaignRequest(
        sender_id="T1", message="Hi {first_name}", audience=AudienceFilter(caseload=["T1"])
    )
    dry = send_campaign(Campaign=request.model_copy(update={"dry_run": True}), return_state=True)
    preview = dry.result()
    assert preview["campaign_id"] is None and preview["sms"] == 5
    # A dry run shows its preview and plan in the UI, on its own flow run.
    shown = run_artifacts(dry.state_details.flow_run_id)
    assert sorted(a.type for a in shown) == ["markdown", "table"]
    [markdown] = [a for a in shown if a.type == "markdown"]
    assert "dry run: nothing sent" in str(markdown.data) and "**5** by SMS" in str(markdown.data)
    assert all(a.key is None and a.description for a in shown)
    sent = send_campaign(Campaign=request, return_state=True)
    result = sent.result()
    assert result["status"] == "completed" and result["result"]["sms"] == 5
    assert emulator.counters()["messages_created"] == 10  # notice + message each
    # One Prefect task run per chunk, never per message (DESIGN: the server cannot keep up
    # with one per message), and every chunk sent in one pass.
    chunks = planned_chunks(engine_env, result["campaign_id"])
    assert chunks == result["chunks"] > 1
    assert task_runs(sent.state_details.flow_run_id, "send-chunk", at_least=chunks) == chunks

    cid = result["campaign_id"]
    found = artifacts(
        [
            "sis-sync-summary",
            f"campaign-{cid}-preview",
            f"campaign-{cid}-plan",
            f"campaign-{cid}-progress",
            f"campaign-{cid}-result",
        ]
    )
    assert "People created | 6" in str(found["sis-sync-summary"].data)
    assert "**5** by SMS" in str(found[f"campaign-{cid}-preview"].data)
    assert "before anything is sent" in str(found[f"campaign-{cid}-preview"].description)
    assert {"reason": "text now", "recipients": 5} in json.loads(
        str(found[f"campaign-{cid}-plan"].data)
    )
    assert found[f"campaign-{cid}-progress"].data == 100.0
    table = json.loads(str(found[f"campaign-{cid}-result"].data))
    assert {"channel/status": "sms:sent", "messages": 5} in table


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("case", "campaign", "named"),
    [
        pytest.param(
            "unknown-sender",
            {"sender_id": "E999999", "message": "Hi", "audience": {"caseload": ["T1"]}},
            "no staff member with SIS id 'E999999'",
            id="unknown-sender",
        ),
        pytest.param(
            "unknown-variable",
            {"sender_id": "T1", "message": "Hi {nickname}", "audience": {"caseload": ["T1"]}},
            "{nickname}",
            id="unknown-variable",
        ),
        pytest.param(
            "no-filter",
            {"sender_id": "T1", "message": "Hi"},
            "the audience has no filter",
            id="no-filter",
        ),
        pytest.param(
            "unknown-student",
            {"sender_id": "T1", "message": "Hi", "audience": {"student_ids": ["S0", "S404"]}},
            "unknown student ids: S404",
            id="unknown-student-id",
        ),
        pytest.param(
            "nobody",
            {"sender_id": "T1", "message": "Hi", "audience": {"programs": ["Astrology"]}},
            "no active student matches this audience",
            id="empty-audience",
        ),
        pytest.param(
            "malformed",  # as a run created with "Validate parameters" unticked
            {"sender_id": "", "message": "Hi", "audience": {"risk_levels": ["extreme"]}},
            "Sender (staff SIS id): String should have at least 1 character",
            id="malformed-parameters",
        ),
        pytest.param(
            "past",
            {
                "sender_id": "T1",
                "message": "Hi",
                "audience": {"caseload": ["T1"]},
                "send_at": "2020-01-01T09:00:00",
            },
            "is in the past",
            id="send-at-in-the-past",
        ),
    ],
)
def test_a_refused_campaign_run_ends_failed_naming_what_was_wrong(
    prefect_harness: None,
    engine_env: Settings,
    tmp_path: Path,
    emulator: Any,
    case: str,
    campaign: dict[str, Any],
    named: str,
) -> None:
    source = write_extract(
        tmp_path / "x",
        [staff("T1", roles="Texting"), student("S0", advisor_id="T1")],
        [phone("S0", "(212) 555-1000")],
    )
    sis_sync(source=source)
    state = send_campaign(Campaign=campaign, return_state=True)
    assert state.is_failed(), state
    assert named in str(state.message)
    assert emulator.counters()["messages_created"] == 0
    if case != "malformed":
        [preview] = [
            a for a in run_artifacts(state.state_details.flow_run_id) if a.type == "markdown"
        ]
        assert "Refused — nothing was sent." in str(preview.data)
