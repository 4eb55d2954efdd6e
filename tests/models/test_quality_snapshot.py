"""The data-quality snapshot query and the run history, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from domain.config import SmsConfig
from domain.quality.metrics import derive, measure
from domain.quality.snapshot import PHONE_COLUMNS, STUDENT_COLUMNS
from domain.routing import ConsentState
from models.consent import Consent
from models.people import Person, PhoneNumber
from models.quality import (
    previous_quality_run,
    recent_quality_runs,
    save_quality_run,
    take_snapshot,
)

T0 = datetime(2025, 9, 1, 6, 0, tzinfo=UTC)


def phone(person: Person, e164: str | None, **kw: object) -> PhoneNumber:
    assert person.id is not None
    values: dict[str, object] = {
        "person_id": person.id,
        "raw": e164 or "N/A",
        "type_code": "CELL",
        "kind": "mobile",
        "match_key": e164 or "raw:N/A",
        "e164": e164,
        "line_type": "FIXED_LINE_OR_MOBILE" if e164 else None,
        "valid": e164 is not None,
        "sms_capable": e164 is not None,
        "source_updated_at": T0 - timedelta(days=10),
    }
    values.update(kw)
    return PhoneNumber(**values)  # type: ignore[arg-type]


def arrange(session: Session) -> None:
    people = {
        "A1": Person(sis_id="A1", role="staff", first_name="Ada", last_name="Advisor"),
        "S2": Person(sis_id="S2", role="student", first_name="Bo", last_name="B", email=" ",
                     advisor_sis_id="A1", program="Nursing", sms_e164="+12125550102"),
        "S1": Person(sis_id="S1", role="student", first_name="Al", last_name="A",
                     email="s1@c.edu", advisor_sis_id="A1", program="Welding",
                     sms_e164="+12125550101"),
        "S3": Person(sis_id="S3", role="student", first_name="Cy", last_name="C",
                     email="s3@c.edu", sms_reason="no_mobile_number"),
        "S4": Person(sis_id="S4", role="student", status="inactive", email="s4@c.edu",
                     sms_e164="+12125550104"),
    }  # fmt: skip
    session.add_all(people.values())
    session.flush()
    s1, s2, s3, s4 = (people[k] for k in ("S1", "S2", "S3", "S4"))
    session.add_all(
        [
            phone(s1, "+12125550101", is_primary=True),
            phone(s1, "+12125550199", type_code="OLD", kind="other", present=False),
            phone(s2, "+12125550102", disabled_by_carrier=True, carrier_error_code=30006),
            phone(s2, "+12125550101", type_code="PAR", kind="parent"),  # S1's cell is S2's parent
            phone(s3, None, reason="unparseable", source_updated_at=None),
            phone(s4, "+12125550104"),  # inactive: not in the snapshot
            phone(people["A1"], "+12125550100", type_code="WORK", kind="work"),  # staff
            Consent(e164="+12125550101", status="opted_out", source="STOP"),
            Consent(e164="+12125550102", sender_e164="+18005550000", status="opted_out",
                    source="STOP"),  # a per-sender STOP is not the institution's state
        ]
    )  # fmt: skip
    session.commit()


def test_snapshot_has_active_students_and_their_present_phones(session: Session) -> None:
    arrange(session)
    snap = take_snapshot(session=session)
    st, ph = snap.students, snap.phones
    assert list(st) == list(STUDENT_COLUMNS) and list(ph) == list(PHONE_COLUMNS)
    assert st["sis_id"] == ["S1", "S2", "S3"]  # ordered; no staff, no inactive student
    assert st["email"] == ["s1@c.edu", None, "s3@c.edu"]  # a blank email is no email
    assert st["sms_e164"] == ["+12125550101", "+12125550102", None]
    assert st["sms_reason"] == [None, None, "no_mobile_number"]
    assert st["consent_status"] == ["opted_out", None, None]  # institution scope only
    assert st["sms_disabled_by_carrier"] == [False, True, False]
    assert st["sms_is_parent_number"] == [True, False, False]
    assert st["advisor_sis_id"] == ["A1", "A1", None]
    assert st["program"] == ["Welding", "Nursing", None]
    assert sorted(zip(ph["sis_id"], ph["type_code"], strict=True)) == [
        ("S1", "CELL"), ("S2", "CELL"), ("S2", "PAR"), ("S3", "CELL"),
    ]  # fmt: skip
    s3 = ph["sis_id"].index("S3")
    assert (ph["e164"][s3], ph["valid"][s3], ph["reason"][s3], ph["raw"][s3]) == (
        None, False, "unparseable", "N/A",
    )  # fmt: skip
    dates = [d for d in ph["source_updated_at"] if d is not None]
    assert dates and all(d.tzinfo is not None for d in dates)


def test_a_stored_review_pause_makes_the_student_unreachable(session: Session) -> None:
    # The consent state as the reply handling stores it, read back through the snapshot.
    student = Person(sis_id="S1", role="student", email="s1@c.edu", sms_e164="+12125550101")
    session.add(student)
    session.flush()
    session.add_all(
        [
            phone(student, "+12125550101", is_primary=True),
            Consent(
                e164="+12125550101",
                status=ConsentState.PAUSED_FOR_REVIEW.value,
                source="reply_review",
            ),
        ]
    )
    session.commit()
    snap = take_snapshot(session=session)
    assert snap.students["consent_status"] == ["paused_for_review"]
    for auto in (True, False):
        figures = measure(snap, derive(snap, SmsConfig(auto_opt_in=auto), T0))
        assert (figures.sms_reachable, figures.paused_for_review) == (0, 1)


def test_empty_database_gives_an_empty_snapshot(session: Session) -> None:
    snap = take_snapshot(session=session)
    assert snap.n_students == 0 and snap.n_phones == 0


def test_runs_are_kept_and_read_back_oldest_first(session: Session) -> None:
    for day, pct in ((0, 96.0), (2, 94.0), (1, 95.0)):
        save_quality_run(
            session=session,
            at=T0 + timedelta(days=day),
            metrics={"sms_reachable_pct": pct, "students": 100},
            alert=pct < 95,
            report_dir=f"reports/{day}",
        )
    session.commit()
    runs = recent_quality_runs(session=session)
    assert [r.metrics["sms_reachable_pct"] for r in runs] == [96.0, 95.0, 94.0]
    assert [r.alert for r in runs] == [False, False, True]
    assert all(r.at.tzinfo is not None for r in runs)
    assert [r.report_dir for r in recent_quality_runs(session=session, limit=2)] == [
        "reports/1",
        "reports/2",
    ]
    before = recent_quality_runs(session=session, before=T0 + timedelta(days=2))
    assert [r.metrics["sms_reachable_pct"] for r in before] == [96.0, 95.0]
    last = previous_quality_run(session=session)
    assert last is not None and last.metrics["sms_reachable_pct"] == 94.0
    assert previous_quality_run(session=session, before=T0) is None
