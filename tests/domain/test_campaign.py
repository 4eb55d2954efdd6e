"""Campaign planning: consent resolution, length refusal, and the preview's exact figures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.campaign import (
    Member,
    PlanRefused,
    check_lengths,
    plan_recipients,
)
from domain.config import OptOutScope, SmsConfig
from domain.consent import StoredConsent, effective_consent
from domain.routing import Channel, ConsentSource, ConsentState, Reason
from domain.templates import parse_template

NOON_NY = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)  # 12:00 in New York
NIGHT_NY = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 23:00 in New York

IN = StoredConsent("opted_in", "auto")
OUT = StoredConsent("opted_out", "stop")
PAUSED = StoredConsent("paused_for_review", "reply_review")


@pytest.mark.parametrize(
    ("institution", "sender", "scope", "expected"),
    [
        pytest.param(
            None, None, OptOutScope.institution, ConsentState.UNKNOWN, id="nothing-stored"
        ),
        pytest.param(IN, None, OptOutScope.institution, ConsentState.OPTED_IN, id="auto-opt-in"),
        pytest.param(
            OUT,
            None,
            OptOutScope.sender,
            ConsentState.OPTED_OUT,
            id="institution-stop-wins-in-sender-scope",
        ),
        pytest.param(
            IN, OUT, OptOutScope.sender, ConsentState.OPTED_OUT, id="sender-stop-in-sender-scope"
        ),
        pytest.param(
            IN,
            OUT,
            OptOutScope.institution,
            ConsentState.OPTED_IN,
            id="sender-row-ignored-in-institution-scope",
        ),
        pytest.param(
            OUT,
            IN,
            OptOutScope.sender,
            ConsentState.OPTED_OUT,
            id="sender-start-cannot-lift-institution-stop",
        ),
        pytest.param(
            PAUSED, IN, OptOutScope.sender, ConsentState.PAUSED_FOR_REVIEW, id="review-pause-wins"
        ),
    ],
)
def test_effective_consent(
    institution: StoredConsent | None,
    sender: StoredConsent | None,
    scope: OptOutScope,
    expected: ConsentState,
) -> None:
    assert effective_consent(institution, sender, scope)[0] is expected


def member(
    i: int, *, e164: str | None = "+12125550100", email: str | None = "s@x.edu", first: str = "Ana"
) -> Member:
    return Member(
        id=i,
        sis_id=f"S{i}",
        display_name=f"{first} L{i}",
        email=email,
        sms_e164=e164.replace("0100", f"{100 + i:04d}") if e164 else None,
        sms_reason=None if e164 else "no_mobile_number",
        values={
            "first_name": first,
            "preferred_name": None,
            "last_name": f"L{i}",
            "sender_name": "Dr. Lee",
            "advisor_name": "",
            "program": "Nursing",
        },
    )


def plan(
    members: list[Member], text: str = "Hi {preferred_name}, see {sender_name}.", **kw: object
):  # type: ignore[no-untyped-def]
    args: dict[str, object] = dict(
        template=parse_template(text),
        config=SmsConfig(),
        sender_name="Dr. Lee",
        consents={},
        texted_before=frozenset(),
        quota_left=None,
        now=NOON_NY,
    )
    args.update(kw)
    return plan_recipients(members, **args)  # type: ignore[arg-type]


def test_first_sms_gets_the_opt_in_notice_and_counts_it_against_the_quota() -> None:
    planned, summary = plan([member(1)])
    [p] = planned
    assert p.body == "Hi Ana, see Dr. Lee."
    assert p.notice is not None and "from Dr. Lee" in p.notice and "intended for Ana L1" in p.notice
    assert p.decision.quota_cost == 2 and summary.quota_units == 2 and summary.opt_in_notices == 1


def test_no_notice_when_this_sender_number_texted_before() -> None:
    m = member(1)
    planned, summary = plan([m], texted_before=frozenset({m.sms_e164}))
    assert planned[0].notice is None and summary.quota_units == 1


def test_summary_counts_channels_reasons_and_exact_segments() -> None:
    members = [
        member(1),
        member(2, first="Zoë"),
        member(3, e164=None),
        member(4, e164=None, email=None),
    ]
    consents = {members[1].sms_e164: (OUT, None)}
    _, summary = plan(members, text="Hi {first_name}! " + "x" * 150, consents=consents)
    d = summary.as_dict()
    assert (d["recipients"], d["sms"], d["email"], d["undeliverable"]) == (4, 1, 2, 1)
    assert d["by_reason"] == {"sms_ok": 1, "opted_out": 1, "no_sms_number": 1, "no_email_no_sms": 1}
    # 'Hi Ana! ' + 150 x = 158 GSM-7 septets: one segment; Zoë's body is UCS-2 but went by email
    assert d["segments"] == {"min": 1, "max": 1, "total": 1, "encodings": {"GSM-7": 1}}


def test_variables_change_segment_counts_per_recipient() -> None:
    members = [member(1, first="Al"), member(2, first="Bartholomew-Alexander")]
    planned, summary = plan(members, text="{first_name} " + "y" * 150)
    assert [p.segments.segments for p in planned] == [1, 2]
    assert (summary.segments_min, summary.segments_max, summary.segments_total) == (1, 2, 3)


def test_quiet_hours_defer_to_the_window_start() -> None:
    planned, summary = plan([member(1)], now=NIGHT_NY)
    decision = planned[0].decision
    assert decision.channel is Channel.SMS and decision.reason is Reason.DEFERRED_QUIET_HOURS
    assert decision.send_at == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)  # 08:00 New York
    assert summary.deferred == 1


def test_quota_estimate_shrinks_and_the_rest_go_by_email() -> None:
    planned, summary = plan([member(i) for i in range(1, 4)], quota_left=5)
    assert [p.decision.channel for p in planned] == [Channel.SMS, Channel.SMS, Channel.EMAIL]
    assert planned[2].decision.reason is Reason.QUOTA_EXHAUSTED and summary.quota_units == 4


def test_carrier_opt_out_source_is_reported() -> None:
    m = member(1)
    planned, _ = plan(
        [m], consents={m.sms_e164: (StoredConsent("opted_out", "carrier_21610"), None)}
    )
    assert planned[0].decision.consent_source is ConsentSource.CARRIER_21610


def test_too_long_for_some_recipients_is_refused_naming_them() -> None:
    with pytest.raises(PlanRefused, match=r"1 recipient\(s\): S2 \(1601 chars\)"):
        check_lengths([("S1", "x" * 1600), ("S2", "x" * 1601)])
    long_name = member(2, first="N" * 100)
    with pytest.raises(PlanRefused, match="S2"):
        plan([member(1), long_name], text="{first_name}" + "z" * 1550)
