"""The router, one row per rule of DESIGN.md (and rows for the order between rules)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from typing import Any

import pytest

from domain.quiet_hours import SendingWindow
from domain.roles import RoleFilter
from domain.routing import (
    Channel,
    ConsentSource,
    ConsentState,
    Decision,
    PermissionPolicy,
    Reason,
    RecipientFacts,
    RefusalCode,
    RoutingPolicy,
    SenderFacts,
    check_sender,
    opt_in_notice,
    route,
)

DAYTIME = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)  # 10:00 in New York
NIGHT = datetime(2026, 11, 11, 3, 0, tzinfo=UTC)  # 22:00 in New York
NEXT_MORNING = datetime(2026, 11, 11, 13, 0, tzinfo=UTC)  # 08:00 in New York

POLICY = RoutingPolicy(
    auto_opt_in=True,
    window=SendingWindow(time(8), time(21)),
    institution_tz="America/Chicago",
)
STUDENT = RecipientFacts(
    person_id="S001",
    sms_e164="+12125550123",
    email="s001@students.example.edu",
    consent=ConsentState.OPTED_IN,
    consent_source=ConsentSource.START,
    timezone="America/New_York",
    texted_before=True,
)

OPTED_OUT = {"consent": ConsentState.OPTED_OUT, "consent_source": ConsentSource.STOP}
NO_NUMBER = {"sms_e164": None, "no_sms_reason": "parent_number_only"}
NO_EMAIL = {"email": None}


def email(reason: Reason, **extra: Any) -> Decision:
    return Decision(Channel.EMAIL, reason, sms_blocked=reason, **extra)


def undeliverable(blocked: Reason, **extra: Any) -> Decision:
    return Decision(Channel.NONE, Reason.NO_EMAIL_NO_SMS, sms_blocked=blocked, **extra)


# (id, recipient changes, policy changes, route keyword changes, expected decision)
ROUTE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], Decision]] = [
    # --- SMS --------------------------------------------------------------------------
    ("sms-ok", {}, {}, {}, Decision(Channel.SMS, Reason.SMS_OK, quota_cost=1)),
    (
        "first-sms-gets-opt-in-notice",
        {"texted_before": False},
        {},
        {},
        Decision(Channel.SMS, Reason.SMS_OK, needs_opt_in_notice=True, quota_cost=2),
    ),
    (
        "notice-cost-counts-in-segments",
        {"texted_before": False},
        {},
        {"cost": 3, "notice_cost": 2},
        Decision(Channel.SMS, Reason.SMS_OK, needs_opt_in_notice=True, quota_cost=5),
    ),
    (
        "unknown-consent-auto-opt-in",
        {"consent": ConsentState.UNKNOWN, "consent_source": None},
        {},
        {},
        Decision(Channel.SMS, Reason.SMS_OK, auto_opt_in=True, quota_cost=1),
    ),
    (
        "explicit-opt-in-with-auto-off",
        {},
        {"auto_opt_in": False},
        {},
        Decision(Channel.SMS, Reason.SMS_OK, quota_cost=1),
    ),
    (
        "consent-as-plain-string",
        {"consent": "opted_in"},
        {},
        {},
        Decision(Channel.SMS, Reason.SMS_OK, quota_cost=1),
    ),
    # --- rule 2: SMS number ----------------------------------------------------------
    (
        "no-sms-number",
        NO_NUMBER,
        {},
        {},
        email(Reason.NO_SMS_NUMBER, number_issue="parent_number_only"),
    ),
    (
        "carrier-disabled-number",
        {"sms_e164": None, "no_sms_reason": "carrier_disabled"},
        {},
        {},
        email(Reason.NO_SMS_NUMBER, number_issue="carrier_disabled"),
    ),
    # --- rule 3: consent -------------------------------------------------------------
    (
        "opted-out-by-stop",
        OPTED_OUT,
        {},
        {},
        email(Reason.OPTED_OUT, consent_source=ConsentSource.STOP),
    ),
    (
        "opted-out-by-carrier-21610",
        {"consent": ConsentState.OPTED_OUT, "consent_source": ConsentSource.CARRIER_21610},
        {},
        {},
        email(Reason.OPTED_OUT, consent_source=ConsentSource.CARRIER_21610),
    ),
    (
        "opted-out-by-admin",
        {"consent": ConsentState.OPTED_OUT, "consent_source": ConsentSource.ADMIN},
        {},
        {},
        email(Reason.OPTED_OUT, consent_source=ConsentSource.ADMIN),
    ),
    (
        "opted-out-as-plain-string",
        {"consent": "opted_out", "consent_source": None},
        {},
        {},
        email(Reason.OPTED_OUT),
    ),
    (
        "paused-for-review",
        {"consent": ConsentState.PAUSED_FOR_REVIEW, "consent_source": ConsentSource.REPLY_REVIEW},
        {},
        {},
        email(Reason.REVIEW_PENDING, consent_source=ConsentSource.REPLY_REVIEW),
    ),
    (
        "not-opted-in-and-auto-off",
        {"consent": ConsentState.UNKNOWN, "consent_source": None},
        {"auto_opt_in": False},
        {},
        email(Reason.NOT_OPTED_IN),
    ),
    # --- rule 4: quota ---------------------------------------------------------------
    ("quota-exhausted", {}, {}, {"quota_left": 0}, email(Reason.QUOTA_EXHAUSTED)),
    (
        "quota-exactly-enough",
        {},
        {},
        {"quota_left": 1},
        Decision(Channel.SMS, Reason.SMS_OK, quota_cost=1),
    ),
    (
        "quota-short-of-multi-segment-cost",
        {},
        {},
        {"quota_left": 2, "cost": 3},
        email(Reason.QUOTA_EXHAUSTED),
    ),
    (
        "quota-covers-message-but-not-notice",
        {"texted_before": False},
        {},
        {"quota_left": 1},
        email(Reason.QUOTA_EXHAUSTED),
    ),
    (
        "quota-unlimited",
        {},
        {},
        {"quota_left": None, "cost": 10},
        Decision(Channel.SMS, Reason.SMS_OK, quota_cost=10),
    ),
    # --- rule 5: quiet hours ---------------------------------------------------------
    (
        "quiet-hours-defer-to-window-start",
        {},
        {},
        {"now": NIGHT},
        Decision(Channel.SMS, Reason.DEFERRED_QUIET_HOURS, send_at=NEXT_MORNING, quota_cost=1),
    ),
    (
        "quiet-hours-deferral-keeps-notice-and-cost",
        {"texted_before": False},
        {},
        {"now": NIGHT},
        Decision(
            Channel.SMS,
            Reason.DEFERRED_QUIET_HOURS,
            send_at=NEXT_MORNING,
            needs_opt_in_notice=True,
            quota_cost=2,
        ),
    ),
    (
        "quiet-hours-in-recipient-zone",  # 15:30 UTC: 10:30 in New York, 07:30 in LA
        {"timezone": "America/Los_Angeles"},
        {},
        {"now": datetime(2026, 11, 10, 15, 30, tzinfo=UTC)},
        Decision(
            Channel.SMS,
            Reason.DEFERRED_QUIET_HOURS,
            send_at=datetime(2026, 11, 10, 16, 0, tzinfo=UTC),
            quota_cost=1,
        ),
    ),
    (
        "quiet-hours-institution-zone-when-unknown",  # 13:30 UTC: 07:30 in Chicago
        {"timezone": None},
        {},
        {"now": datetime(2026, 11, 10, 13, 30, tzinfo=UTC)},
        Decision(
            Channel.SMS,
            Reason.DEFERRED_QUIET_HOURS,
            send_at=datetime(2026, 11, 10, 14, 0, tzinfo=UTC),
            quota_cost=1,
        ),
    ),
    (
        "quiet-hours-off",
        {},
        {"window": None},
        {"now": NIGHT},
        Decision(Channel.SMS, Reason.SMS_OK, quota_cost=1),
    ),
    # --- rule 6: undeliverable -------------------------------------------------------
    (
        "no-number-no-email",
        {"sms_e164": None, "no_sms_reason": "no_mobile_number", **NO_EMAIL},
        {},
        {},
        undeliverable(Reason.NO_SMS_NUMBER, number_issue="no_mobile_number"),
    ),
    (
        "opted-out-no-email",
        {**OPTED_OUT, **NO_EMAIL},
        {},
        {},
        undeliverable(Reason.OPTED_OUT, consent_source=ConsentSource.STOP),
    ),
    (
        "quota-exhausted-no-email",
        NO_EMAIL,
        {},
        {"quota_left": 0},
        undeliverable(Reason.QUOTA_EXHAUSTED),
    ),
    (
        "empty-email-is-no-email",
        {**NO_NUMBER, "email": ""},
        {},
        {},
        undeliverable(Reason.NO_SMS_NUMBER, number_issue="parent_number_only"),
    ),
    (
        "sms-needs-no-email",
        NO_EMAIL,
        {},
        {},
        Decision(Channel.SMS, Reason.SMS_OK, quota_cost=1),
    ),
    # --- order between rules: the earlier rule decides, and email costs no quota -----
    (
        "order-opted-out-before-quota",
        OPTED_OUT,
        {},
        {"quota_left": 0},
        email(Reason.OPTED_OUT, consent_source=ConsentSource.STOP),
    ),
    (
        "order-no-number-before-consent",
        {**NO_NUMBER, **OPTED_OUT},
        {},
        {},
        email(Reason.NO_SMS_NUMBER, number_issue="parent_number_only"),
    ),
    (
        "order-review-before-quota",
        {"consent": ConsentState.PAUSED_FOR_REVIEW, "consent_source": None},
        {},
        {"quota_left": 0},
        email(Reason.REVIEW_PENDING),
    ),
    (
        "order-not-opted-in-before-quota",
        {"consent": ConsentState.UNKNOWN, "consent_source": None},
        {"auto_opt_in": False},
        {"quota_left": 0},
        email(Reason.NOT_OPTED_IN),
    ),
    (
        "order-quota-before-quiet-hours-email-not-deferred",
        {},
        {},
        {"quota_left": 0, "now": NIGHT},
        email(Reason.QUOTA_EXHAUSTED),
    ),
    (
        "order-opted-out-at-night-email-not-deferred",
        OPTED_OUT,
        {},
        {"now": NIGHT},
        email(Reason.OPTED_OUT, consent_source=ConsentSource.STOP),
    ),
]


@pytest.mark.parametrize(
    ("recipient", "policy", "kwargs", "expected"),
    [c[1:] for c in ROUTE_CASES],
    ids=[c[0] for c in ROUTE_CASES],
)
def test_route(
    recipient: dict[str, Any], policy: dict[str, Any], kwargs: dict[str, Any], expected: Decision
) -> None:
    args: dict[str, Any] = {"quota_left": 100, "cost": 1, "now": DAYTIME, **kwargs}
    decision = route(replace(STUDENT, **recipient), policy=replace(POLICY, **policy), **args)
    assert decision == expected
    if decision.channel is not Channel.SMS:
        assert decision.quota_cost == 0
        assert decision.send_at is None


def test_route_refuses_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        route(STUDENT, policy=POLICY, quota_left=1, cost=1, now=datetime(2026, 11, 10, 15))  # noqa: DTZ001


def test_route_depends_only_on_its_arguments() -> None:
    # Same values, same decision; another `now`, another decision. That domain/ imports
    # nothing impure is checked on the source itself, in test_purity.py.
    first = route(STUDENT, policy=POLICY, quota_left=5, cost=1, now=NIGHT)
    again = route(STUDENT, policy=POLICY, quota_left=5, cost=1, now=NIGHT)
    assert first == again
    assert route(STUDENT, policy=POLICY, quota_left=5, cost=1, now=DAYTIME).send_at is None


EXPLAIN_CASES = [
    ("sms", Decision(Channel.SMS, Reason.SMS_OK, quota_cost=1), "SMS"),
    (
        "deferred",
        Decision(Channel.SMS, Reason.DEFERRED_QUIET_HOURS, send_at=NEXT_MORNING, quota_cost=1),
        "SMS deferred by quiet hours until 2026-11-11 13:00 UTC",
    ),
    (
        "no-number",
        email(Reason.NO_SMS_NUMBER, number_issue="parent_number_only"),
        "no SMS-eligible number (parent number only); sent by email",
    ),
    (
        "opted-out-undeliverable",
        undeliverable(Reason.OPTED_OUT, consent_source=ConsentSource.CARRIER_21610),
        "opted out of texts (carrier 21610); no email address either: undeliverable",
    ),
]


@pytest.mark.parametrize(
    ("decision", "text"), [c[1:] for c in EXPLAIN_CASES], ids=[c[0] for c in EXPLAIN_CASES]
)
def test_explain(decision: Decision, text: str) -> None:
    assert decision.explain() == text


def test_undeliverable_flag() -> None:
    assert undeliverable(Reason.OPTED_OUT).undeliverable
    assert not email(Reason.OPTED_OUT).undeliverable


# --- step 1: the sender ---------------------------------------------------------------

PERMISSION = PermissionPolicy(
    permitted_roles=frozenset({"Texting", "Advisor"}),
    dynamic_roles={"Texting": RoleFilter(departments=["Academic Advising"])},
)
JANE = SenderFacts(staff_id="E100", name="Jane Doe", department="Registrar", title="Clerk")

SENDER_CASES = [
    ("static-role", {"static_roles": frozenset({"Advisor"})}, {}, False, None),
    ("static-role-any-case", {"static_roles": frozenset({" advisor "})}, {}, False, None),
    ("dynamic-role", {"department": "academic advising"}, {}, False, None),
    (
        "no-role",
        {"static_roles": frozenset({"Faculty"})},
        {},
        False,
        RefusalCode.SENDER_NOT_PERMITTED,
    ),
    ("no-role-but-reply", {}, {}, True, None),
    (
        "no-permitted-roles-configured",
        {"static_roles": frozenset({"Advisor"})},
        {"permitted_roles": frozenset()},
        False,
        RefusalCode.SENDER_NOT_PERMITTED,
    ),
    (
        "inactive-sender",
        {"static_roles": frozenset({"Advisor"}), "active": False},
        {},
        False,
        RefusalCode.SENDER_INACTIVE,
    ),
    ("inactive-sender-reply", {"active": False}, {}, True, RefusalCode.SENDER_INACTIVE),
]


@pytest.mark.parametrize(
    ("sender", "policy", "is_reply", "expected"),
    [c[1:] for c in SENDER_CASES],
    ids=[c[0] for c in SENDER_CASES],
)
def test_check_sender(
    sender: dict[str, Any],
    policy: dict[str, Any],
    is_reply: bool,
    expected: RefusalCode | None,
) -> None:
    refusal = check_sender(
        replace(JANE, **sender), replace(PERMISSION, **policy), is_reply=is_reply
    )
    assert (refusal.code if refusal else None) == expected
    if refusal is not None:
        assert "Jane Doe (E100)" in refusal.message


def test_refusal_names_sender_roles_and_permitted_roles() -> None:
    refusal = check_sender(replace(JANE, static_roles=frozenset({"Faculty"})), PERMISSION)
    assert refusal is not None
    assert refusal.message.startswith("Jane Doe (E100) may not send texts")
    assert "permitted roles (Advisor, Texting)" in refusal.message
    assert "Jane Doe holds faculty" in refusal.message
    assert "nudge roles" in refusal.message


def test_refusal_when_nothing_is_permitted_says_so() -> None:
    refusal = check_sender(JANE, replace(PERMISSION, permitted_roles=frozenset()))
    assert refusal is not None
    assert "(none configured)" in refusal.message


# --- the opt-in notice ----------------------------------------------------------------


def test_opt_in_notice_is_the_design_text() -> None:
    assert opt_in_notice(" Dr. Rivera ", "Alex Nguyen") == (
        "You have been opted-in to receive messages from Dr. Rivera. Text STOP at any time "
        "to stop receiving messages. This message is intended for Alex Nguyen."
    )
