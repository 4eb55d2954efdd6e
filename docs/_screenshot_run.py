"""Helper of ``take_screenshots.py``: a small college and one dry run through the server.

Prints ``{"deployment": id, "preview": artifact id}`` for the pages to photograph.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from domain.audience import AudienceFilter, RiskLevel
from domain.campaign import CampaignRequest
from flows.send_campaign import send_campaign
from flows.sis_sync import run_sync
from models.config import load_config, save_config
from models.db import make_engine, session_scope, upgrade_database
from nudge.settings import get_settings
from sandbox.generate import generate


def main(work: Path) -> None:
    settings = get_settings()
    upgrade_database(settings.database_url)
    folder = work / "extract"
    generate(folder, students=300, staff=8, seed=7)
    run_sync(f"csv:{folder}", settings=settings)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        config = load_config(session=s)
        config.permitted_roles = ["Texting"]
        save_config(config, session=s)
        from sqlalchemy import select

        from models.people import Person

        sender = (
            s.execute(select(Person.sis_id).where(Person.role == "staff").order_by(Person.sis_id))
            .scalars()
            .first()
        )
        from models.roles import RoleGrant

        s.add(RoleGrant(staff_sis_id=sender, role="Texting", granted_by="screenshots"))
    engine.dispose()
    state = send_campaign(
        Campaign=CampaignRequest(
            sender_id=str(sender),
            message="Hi {preferred_name}, registration for spring opens Monday. "
            "Reply here if you want help choosing classes. - {sender_name}",
            audience=AudienceFilter(risk_levels=[RiskLevel.HIGH, RiskLevel.CRITICAL]),
            dry_run=True,
        ),
        return_state=True,
    )
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
        deployment = client.read_deployment_by_name("send-campaign/send-campaign")
    [preview] = [a for a in found if a.type == "markdown"]
    print(json.dumps({"deployment": str(deployment.id), "preview": str(preview.id)}))  # noqa: T201


if __name__ == "__main__":
    main(Path(sys.argv[1]))
