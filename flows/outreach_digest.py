"""Deployment entrypoint ``outreach-digest`` (Mondays 07:00): the week's outreach in one page.

Thin orchestration: :func:`run_digest` is the one place the order of the steps is written;
the steps live in ``tasks/outcomes.py`` (the figures are ``models/outcomes.py``). The Prefect
flow runs it inside a flow run (so the markdown artifact is created), and ``nudge digest``
runs the same steps without Prefect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from nudge import wiring
from nudge.settings import Settings
from tasks import outcomes
from tasks.env import Env
from tasks.runtime import run_logger

#: The digest's subfolder of ``NUDGE_REPORT_DIR``.
FOLDER = "outreach"


def run_digest(
    settings: Settings, *, env: Env | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Summarise the 7 days before ``now`` (default: the env's clock): every campaign first
    sent in them with its outcomes, every staff member's texts and answers.

    Writes ``settings.report_dir / "outreach" / "<local date>.html"`` (self-contained, with
    a bar chart of reply rates), creates the ``outreach-digest`` markdown artifact inside a
    Prefect run, and emails the figures and the page's path to each of
    ``NUDGE_ALERT_EMAILS`` through the outbox, once per ISO week however often it runs.
    Returns the digest's figures with ``page``, ``emails_queued``, ``emails_sent``,
    ``email_errors`` and ``artifact``.
    """
    env = env or wiring.env(settings)
    moment = now or env.now()
    digest = outcomes.gather_digest(env, now=moment)
    page = outcomes.write_digest_page(digest, settings.report_dir / FOLDER)
    recipients = [a for a in settings.alert_emails if a.strip()]
    queued = outcomes.queue_digest_emails(env, digest, page, recipients)
    sent: dict[str, Any] = {"emails_sent": 0, "email_errors": []}
    if recipients:
        sent = outcomes.send_digest_emails(env)
    artifact = outcomes.publish_digest(digest, page)
    run_logger().info(
        "outreach digest %s: %d campaign(s), page %s, %d email(s) queued, %d sent",
        digest.week,
        len(digest.campaigns),
        page,
        queued,
        sent["emails_sent"],
    )
    return {
        **digest.as_dict(),
        "page": str(page),
        "emails_queued": queued,
        **sent,
        "artifact": artifact,
    }


@flow(name="outreach-digest", log_prints=False)
def outreach_digest() -> dict[str, Any]:
    """Weekly outreach digest: each campaign's delivery, replies and opt-outs, and how fast
    each staff member answered, as a page, an artifact and one email per alert address."""
    return run_digest(wiring.settings())
