"""How a campaign run shows where it is: the progress artifact updated after every chunk, the
stored campaign's result (status, breakdown, what is pending and why), and the result
artifact a Prefect run leaves behind.

Prefect is imported only where an artifact is written: ``nudge campaigns show`` reads the
result without paying for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.campaign_views import campaign_summary, settled_percent

if TYPE_CHECKING:
    from tasks.campaigns import PlanOutcome
    from tasks.worker import WorkReport


class CampaignProgress:
    """A Prefect progress artifact for a campaign (the share of its messages settled),
    updated after every chunk; nothing outside a Prefect run or without a campaign."""

    def __init__(self, engine: Engine, campaign_id: int | None) -> None:
        from tasks.runtime import in_prefect_run

        self.engine = engine
        self.campaign_id = campaign_id
        self.artifact: UUID | None = None
        if campaign_id is not None and in_prefect_run():
            from prefect.artifacts import create_progress_artifact

            self.artifact = create_progress_artifact(  # type: ignore[assignment]
                progress=self.percent(),
                key=f"campaign-{campaign_id}-progress",
                description=f"Campaign {campaign_id}: share of messages settled",
            )

    def percent(self) -> float:
        """The share of the campaign's messages settled, in percent."""
        with Session(self.engine) as s:
            return settled_percent(session=s, campaign_id=self.campaign_id or 0)

    def update(self) -> None:
        """Bring the artifact up to date (after a chunk)."""
        if self.artifact is not None:
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(self.artifact, progress=self.percent())


def campaign_result(engine: Engine, campaign_id: int, *, mail_from: str) -> dict[str, Any]:
    """The stored campaign's status, breakdown, what is still pending and why, and the
    emails a crash left undecided (with their Message-IDs, to look up on the mail server
    that sends as ``mail_from``). Raises LookupError for an unknown campaign."""
    from adapters.mail.message import message_id_for

    with Session(engine) as s:
        data = campaign_summary(session=s, campaign_id=campaign_id)
    for item in data["unknown_emails"]:
        item["message_id_header"] = message_id_for(item["key"], mail_from)
    return data


def run_result(
    outcome: PlanOutcome, report: WorkReport, engine: Engine, *, mail_from: str
) -> dict[str, Any]:
    """What ``nudge send`` and the ``send-campaign`` run return for a campaign sent now:
    the plan's figures, the stored result (:func:`campaign_result`), what this run sent
    and the chunks that failed."""
    assert outcome.campaign_id is not None  # noqa: S101 - a stored campaign
    data = outcome.as_dict()
    data.update(campaign_result(engine, outcome.campaign_id, mail_from=mail_from))
    data["sent_now"] = {
        "sms": report.sms_sent,
        "email": report.emails_sent,
        "chunks": report.chunks,
    }
    data["errors"] = report.errors
    return data


def publish_result(campaign_id: int, data: dict[str, Any]) -> None:
    """Inside a Prefect run, the result artifact: messages by channel and status, and the
    campaign's state (or when the texts held back by quiet hours go)."""
    from tasks.runtime import in_prefect_run

    if not in_prefect_run():
        return
    from prefect.artifacts import create_table_artifact

    table = [
        {"channel/status": k, "messages": v} for k, v in sorted(data["result"]["by_status"].items())
    ]
    waiting = data.get("waiting")
    state = (
        f"waiting for quiet hours: {waiting['messages']} texts go at {waiting['until_local']}"
        if waiting
        else data["status"]
    )
    held_out = data["result"].get("held_out", 0)
    create_table_artifact(
        key=f"campaign-{campaign_id}-result",
        table=table,
        description=f"Campaign {campaign_id}: {state}. Messages by channel and "
        "what happened to them."
        + (f" {held_out} students were held out at random (sent nothing)." if held_out else ""),
    )


__all__ = ["CampaignProgress", "campaign_result", "publish_result", "run_result"]
