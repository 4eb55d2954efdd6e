"""``make demo``: the whole job, end to end, on embedded defaults — nothing to configure.

Generates a messy SIS extract, creates a SQLite database, syncs it, sends a campaign through
the Twilio emulator (started in-process, gone when the demo ends), lets two students reply
(a STOP and a question), polls the replies (staff are emailed into an outbox folder), shows
that the STOP now gets email instead of SMS, and writes the data-quality report.

Every step is a real Prefect flow run, tracked in a Prefect home inside the demo folder, so
the runs, their logs and artifacts can be browsed in the Prefect UI afterwards. With
``--no-engine`` the same steps run without Prefect (faster; nothing to browse).

    python -m nudge.demo [--dir .demo] [--students 2000] [--no-engine]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _prepare_environment(folder: Path, emulator_url: str, engine: bool) -> None:
    """Point nudge (and Prefect) at the demo folder: the flows read settings from here."""
    os.environ.update(
        NUDGE_DATABASE_URL=f"sqlite:///{folder / 'nudge.db'}",
        NUDGE_TWILIO_BASE_URL=emulator_url,
        NUDGE_OUTBOX_DIR=str(folder / "outbox"),
        NUDGE_REPORT_DIR=str(folder / "reports"),
        NUDGE_SENDER_MPS="200",
        NUDGE_ACCOUNT_MPS="200",
        NUDGE_ALERT_EMAILS='["registrar@college.example"]',
        NUDGE_MAIL_FROM="nudge@college.example",
    )
    for name in ("NUDGE_SMTP_HOST", "NUDGE_SIS_SOURCE"):
        os.environ.pop(name, None)
    if engine:
        os.environ.update(
            PREFECT_HOME=str(folder / "prefect"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="WARNING",
            # A new Prefect home migrates its database on first start: give it time.
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        )
        os.environ.pop("PREFECT_API_URL", None)
    from nudge.settings import get_settings

    get_settings.cache_clear()


def _configure_for_demo() -> dict[str, Any]:
    """Quiet hours off (the demo must text whatever the hour); everything else default."""
    from models.config import load_config, save_config
    from nudge.cli.common import session

    with session() as s:
        config = load_config(session=s)
        config.quiet_hours = "off"
        save_config(config, session=s, actor="demo")
        return config.model_dump(mode="json")


def _pick_sender() -> tuple[str, str]:
    """The first staff member (by id) with the Texting role, and their name."""
    from sqlmodel import col, select

    from models.people import Person
    from nudge.cli.common import session

    with session() as s:
        staff = s.exec(
            select(Person).where(Person.role == "staff").order_by(col(Person.sis_id))
        ).all()
        texting = next(p for p in staff if "texting" in {r.lower() for r in p.roles})
        return texting.sis_id, texting.display_name


def _texted_students(campaign_id: int, count: int) -> list[tuple[str, str, str]]:
    """(student id, their number, the sender number) of students who got the campaign SMS."""
    from sqlalchemy import select

    from models.messaging import Message
    from models.people import Person
    from nudge.cli.common import session

    with session() as s:
        rows = s.execute(
            select(Person.sis_id, Message.to_addr, Message.from_addr)  # type: ignore[call-overload]
            .join(Person, Person.id == Message.person_id)
            .where(
                Message.campaign_id == campaign_id,
                Message.kind == "campaign",
                Message.channel == "sms",
                Message.status == "sent",
            )
            .order_by(Message.id)
            .limit(count)
        ).all()
        return [(r[0], r[1], r[2]) for r in rows]


def run(folder: Path, *, students: int, engine: bool) -> dict[str, Any]:
    """Run the demo in ``folder`` (emptied first); returns the figures it printed."""
    from domain.masking import mask_phone
    from sandbox.generate import generate
    from sandbox.twilio import EmulatorConfig, run_emulator

    started = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    summary: dict[str, Any] = {}

    _say(f"nudge demo in {folder}/ ({'Prefect flow runs' if engine else 'without Prefect'})\n")
    # Dates in the extract are relative to today, as a real extract's would be.
    today = datetime.now(UTC).date()
    extract = generate(
        folder / "sis", students=students, staff=max(students // 50, 10), seed=7, as_of=today
    )
    _say(
        f"1. SIS extract generated: {extract.students:,} students, {extract.staff} staff, "
        f"{extract.phone_rows:,} phone rows (with the usual mess: blanks, landlines coded "
        f"as cells, parent numbers, {extract.malformed_count} malformed rows)"
    )

    with run_emulator(EmulatorConfig(status_delay_ms=0)) as emulator:
        _prepare_environment(folder, emulator.base_url, engine)
        from flows.data_quality import data_quality, run_report
        from flows.poll_replies import poll_replies, run_poll
        from flows.send_campaign import run_campaign, send_campaign
        from flows.sis_sync import run_sync, sis_sync
        from models.db import upgrade_database
        from nudge.settings import get_settings

        settings = get_settings()
        upgrade_database(settings.database_url)
        _configure_for_demo()
        source = f"csv:{folder / 'sis'}"
        sync = sis_sync(source=source) if engine else run_sync(source, settings=settings)
        summary["sync"] = sync
        _say(
            f"2. Synced: {sync['people_created']:,} people, {sync['phones_valid']:,} valid and "
            f"{sync['phones_invalid']:,} invalid phones, {sync['sms_eligible']:,} students "
            f"textable, {sync['rows_quarantined']} rows quarantined, "
            f"{sync['unknown_type_codes']} rows with unknown type codes"
        )

        from domain.audience import AudienceFilter, RiskLevel
        from domain.campaign import CampaignRequest

        sender_id, sender_name = _pick_sender()
        request = CampaignRequest(
            sender_id=sender_id,
            message="Hi {preferred_name}, it's {sender_name} from advising. Spring "
            "registration opens Monday: reply here if you'd like help choosing classes.",
            audience=AudienceFilter(risk_levels=[RiskLevel.HIGH, RiskLevel.CRITICAL]),
        )
        sent = (
            send_campaign(Campaign=request) if engine else run_campaign(request, settings=settings)
        )
        summary["campaign"] = sent
        result = sent.get("result", {})
        _say(
            f"3. Campaign {sent['campaign_id']} from {sender_name} to high-risk "
            f"students: {sent['recipients']} students — {result.get('sms', 0)} by SMS "
            f"(after {sent['opt_in_notices']} opt-in notices), {result.get('email', 0)} by "
            f"email, {result.get('undeliverable', 0)} unreachable; "
            f"why: {', '.join(f'{k} {v}' for k, v in sent['by_reason'].items())}"
        )

        texted = _texted_students(sent["campaign_id"], 2)
        (stop_id, stop_number, sender_number), (ask_id, ask_number, _) = texted[0], texted[1]
        emulator.inject(stop_number, sender_number, "STOP")
        emulator.inject(ask_number, sender_number, "Is the deadline at the end of the week?")
        replied_at = time.perf_counter()
        _say(
            f"4. Two students replied: {stop_id} ({mask_phone(stop_number)}) texted STOP; "
            f"{ask_id} ({mask_phone(ask_number)}) asked a question"
        )

        polled = poll_replies() if engine else run_poll(settings)
        summary["poll"] = polled
        latency = time.perf_counter() - replied_at
        summary["reply_to_email_s"] = round(latency, 2)
        _say(
            f"5. Polled replies: {polled['new']} new, {polled['opt_outs']} opt-out, "
            f"{polled['replies']} reply, {polled['notifications_sent']} email to "
            f"{sender_name}"
        )

        again = CampaignRequest(
            sender_id=sender_id,
            message="Reminder: registration opens Monday.",
            audience=AudienceFilter(student_ids=[stop_id, ask_id]),
        )
        second = send_campaign(Campaign=again) if engine else run_campaign(again, settings=settings)
        summary["after_stop"] = second
        _say(
            f"6. A reminder to both: {second['result']['sms']} SMS, "
            f"{second['result']['email']} email — {stop_id} said STOP, so email only"
        )

        out = folder / "reports" / "latest"
        report = data_quality(out_dir=str(out)) if engine else run_report(settings, out_dir=out)
        summary["report"] = report
        _say(
            f"7. Data-quality report: {report['sms_reachable_pct']:.1f}% of "
            f"{report['students']:,} students reachable by SMS; {report['missing_cell']:,} "
            f"without a cell number, {report['type_mismatches']} landlines coded as cells, "
            f"{report['shared_numbers']} shared numbers; expectations "
            f"{report['expectations_passed']} passed, {report['expectations_failed']} failed"
            f"{'; ALERT raised' if report['alert'] else ''}"
        )

    elapsed = time.perf_counter() - started
    outbox = folder / "outbox"
    emails = sorted(outbox.glob("*.eml")) if outbox.exists() else []
    _say(f"\nDone in {elapsed:.0f} s. Where to look:")
    _say(
        f"  report     {out}/index.html (the report page, works offline), summary.md, "
        "data-docs/index.html (Great Expectations detail), "
        "followup/<advisor>.csv, reachability.svg"
    )
    _say(
        f"  outbox     {outbox}/ — {len(emails)} emails (fallbacks, the staff notification, alerts)"
    )
    _say(
        f"  database   {folder / 'nudge.db'} — try: NUDGE_DATABASE_URL=sqlite:///"
        f"{folder / 'nudge.db'} .venv/bin/nudge consent show {stop_id}"
    )
    if engine:
        _say(
            f"  Prefect UI PREFECT_HOME={folder / 'prefect'} .venv/bin/prefect server start"
            "   then open http://127.0.0.1:4200 (flow runs, logs, artifacts)"
        )
    summary["seconds"] = round(elapsed, 1)
    (folder / "demo-summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def main() -> None:
    """Command-line entry point (``make demo``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="Demo folder.")
    parser.add_argument("--students", type=int, default=2000, help="Students to generate.")
    parser.add_argument("--no-engine", action="store_true", help="Run without Prefect.")
    args = parser.parse_args()
    run(args.dir.resolve(), students=args.students, engine=not args.no_engine)


if __name__ == "__main__":
    main()
