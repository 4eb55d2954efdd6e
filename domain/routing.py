"""The router: for one send request and each recipient, SMS now, SMS later, email, or nothing.

The rules, in DESIGN.md's order (the first that applies decides):

1. **Sender** (:func:`check_sender`, once per request): the sender holds a permitted role,
   static or dynamic. Otherwise the whole request is refused and nothing is planned. A reply
   inside an existing conversation is allowed regardless of role. An inactive staff member
   may not send at all.
2. **SMS number**: the phone rules (``domain/phones.py``) chose one, or said why there is
   none (``no_mobile_number``, ``invalid_number``, ``parent_number_only``,
   ``carrier_disabled``, ``override_denied``, ...). None → email (``no_sms_number``).
3. **Consent** for this sender (the caller resolves the opt-out scope): opted out by STOP,
   carrier error 21610 or an admin → email (``opted_out``); paused while a revocation-like
   reply awaits review → email (``review_pending``); never opted in and auto opt-in off →
   email (``not_opted_in``).
4. **Quota**: the SMS (plus the opt-in notice that precedes a first SMS) must fit in what is
   left this month; ``quota_left=None`` means unlimited. Otherwise → email
   (``quota_exhausted``). The router only decides; the caller reserves atomically.
5. **Quiet hours** in the recipient's local time: outside the permitted window the SMS is
   deferred to the window's next start (``deferred_quiet_hours`` with ``send_at``), never
   dropped.
6. **Undeliverable**: SMS is not possible and there is no email address → channel ``none``
   (``no_email_no_sms``), with why SMS was not possible in ``sms_blocked``.

Every :class:`Decision` carries a :class:`Reason`; for email and none it also carries why SMS
was not possible (``sms_blocked``, and the phone rule's ``number_issue`` for
``no_sms_number``). Email decisions cost no quota. The router is a pure function of its
arguments, ``now`` included, and is fast (see ``bench/bench_router.py``): it builds no
objects beyond the decision and caches quiet-hours answers per (``now``, zone).

The first SMS from a sender number to a recipient is preceded by :func:`opt_in_notice`,
which counts against the quota like any SMS (``Decision.quota_cost`` includes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from domain.quiet_hours import SendingWindow, next_allowed, zone
from domain.roles import RoleFilter, StaffFacts, effective_roles, normalize_role


class Channel(StrEnum):
    """How a message goes out."""

    SMS = "sms"
    EMAIL = "email"
    NONE = "none"


class Reason(StrEnum):
    """Why the router chose the channel it chose."""

    SMS_OK = "sms_ok"
    DEFERRED_QUIET_HOURS = "deferred_quiet_hours"
    NO_SMS_NUMBER = "no_sms_number"
    OPTED_OUT = "opted_out"
    REVIEW_PENDING = "review_pending"
    NOT_OPTED_IN = "not_opted_in"
    QUOTA_EXHAUSTED = "quota_exhausted"
    NO_EMAIL_NO_SMS = "no_email_no_sms"


class ConsentState(StrEnum):
    """A recipient's consent to texts from this sender (scope resolved by the caller)."""

    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"
    UNKNOWN = "unknown"
    PAUSED_FOR_REVIEW = "paused_for_review"


class ConsentSource(StrEnum):
    """What set the consent state (kept in the audit trail)."""

    AUTO = "auto"
    START = "start"
    STOP = "stop"
    ADMIN = "admin"
    CARRIER_21610 = "carrier_21610"
    REPLY_REVIEW = "reply_review"


class RefusalCode(StrEnum):
    """Why a whole send request is refused (router step 1)."""

    SENDER_NOT_PERMITTED = "sender_not_permitted"
    SENDER_INACTIVE = "sender_inactive"


@dataclass(frozen=True, slots=True)
class SenderFacts:
    """The staff member asking to send."""

    staff_id: str
    name: str
    static_roles: frozenset[str] = frozenset()
    department: str | None = None
    title: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class PermissionPolicy:
    """Who may text: ``SmsConfig.permitted_roles`` and the dynamic role definitions."""

    permitted_roles: frozenset[str]
    dynamic_roles: Mapping[str, RoleFilter] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused request: a stable code and a message for the person who asked."""

    code: RefusalCode
    message: str


def check_sender(
    sender: SenderFacts, policy: PermissionPolicy, *, is_reply: bool = False
) -> Refusal | None:
    """Router step 1: return ``None`` if ``sender`` may send this request, else why not."""
    who = f"{sender.name} ({sender.staff_id})"
    if not sender.active:
        return Refusal(
            RefusalCode.SENDER_INACTIVE,
            f"{who} is not an active staff member and cannot send messages.",
        )
    if is_reply:
        return None
    permitted = {normalize_role(r) for r in policy.permitted_roles}
    held = effective_roles(
        StaffFacts(department=sender.department, title=sender.title),
        sender.static_roles,
        policy.dynamic_roles,
    )
    if permitted & held:
        return None
    allowed = ", ".join(sorted(policy.permitted_roles, key=str.casefold)) or "none configured"
    holds = ", ".join(sorted(held)) or "no roles"
    return Refusal(
        RefusalCode.SENDER_NOT_PERMITTED,
        f"{who} may not send texts: sending needs one of the permitted roles ({allowed}) "
        f"and {sender.name} holds {holds}. An SMS admin can grant a role with `nudge roles`; "
        "replies inside an existing conversation are always allowed.",
    )


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """The SMS configuration the per-recipient rules read."""

    auto_opt_in: bool
    window: SendingWindow | None
    institution_tz: str


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    """What the router needs to know about one recipient, for this sender.

    ``sms_e164`` is the number the phone rules chose (``None`` with ``no_sms_reason``
    saying why); ``timezone`` is the recipient's IANA zone (``None``: the institution's);
    ``texted_before`` says whether this sender number has already texted this number
    (if not, the opt-in notice goes first).
    """

    person_id: str
    sms_e164: str | None
    email: str | None = None
    no_sms_reason: str | None = None
    consent: ConsentState = ConsentState.UNKNOWN
    consent_source: ConsentSource | None = None
    timezone: str | None = None
    texted_before: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The router's answer for one recipient.

    * ``channel`` / ``reason``: see :class:`Channel` and :class:`Reason`;
    * ``sms_blocked``: for email and none, why SMS was not possible (for email it equals
      ``reason``); ``number_issue``: the phone rule's reason when that was no number;
      ``consent_source``: what set the consent that blocked SMS, if consent did;
    * ``send_at``: UTC time to send a deferred SMS (``None``: now);
    * ``needs_opt_in_notice``: send :func:`opt_in_notice` first;
    * ``auto_opt_in``: this SMS relies on auto opt-in (record consent ``auto`` on send);
    * ``quota_cost``: quota to reserve when sending (message plus notice; 0 for email).
    """

    channel: Channel
    reason: Reason
    sms_blocked: Reason | None = None
    number_issue: str | None = None
    consent_source: ConsentSource | None = None
    send_at: datetime | None = None
    needs_opt_in_notice: bool = False
    auto_opt_in: bool = False
    quota_cost: int = 0

    @property
    def undeliverable(self) -> bool:
        """Whether the message cannot go out at all."""
        return self.channel is Channel.NONE

    def explain(self) -> str:
        """A short human explanation for previews and reports."""
        text = _EXPLAIN[self.sms_blocked or self.reason]
        if self.number_issue:
            text += f" ({self.number_issue.replace('_', ' ')})"
        elif self.consent_source:
            text += f" ({self.consent_source.replace('_', ' ')})"
        if self.channel is Channel.EMAIL:
            text += "; sent by email"
        elif self.channel is Channel.NONE:
            text += "; no email address either: undeliverable"
        elif self.send_at is not None:
            text += f" until {self.send_at:%Y-%m-%d %H:%M} UTC"
        return text


_EXPLAIN = {
    Reason.SMS_OK: "SMS",
    Reason.DEFERRED_QUIET_HOURS: "SMS deferred by quiet hours",
    Reason.NO_SMS_NUMBER: "no SMS-eligible number",
    Reason.OPTED_OUT: "opted out of texts",
    Reason.REVIEW_PENDING: "texts paused while a reply is reviewed",
    Reason.NOT_OPTED_IN: "not opted in (auto opt-in is off)",
    Reason.QUOTA_EXHAUSTED: "monthly SMS quota exhausted",
    Reason.NO_EMAIL_NO_SMS: "no SMS and no email",
}


def consent_block(consent: ConsentState | str | None, *, auto_opt_in: bool) -> Reason | None:
    """Whether consent lets a number be texted: ``None`` when it does, else why not.

    The one SMS consent gate: the router, the send path (re-checked at send time) and the
    data-quality figures all call it. ``consent`` is the state that applies (see
    :func:`domain.consent.effective_consent`); ``==``, not ``is``, because callers may pass the
    plain strings stored in the database (``None``: never asked). An opt-out and a review
    pause block whatever the auto opt-in setting; a number never asked is textable only
    under auto opt-in.
    """
    if consent == ConsentState.OPTED_OUT:
        return Reason.OPTED_OUT
    if consent == ConsentState.PAUSED_FOR_REVIEW:
        return Reason.REVIEW_PENDING
    if relies_on_auto_opt_in(consent) and not auto_opt_in:
        return Reason.NOT_OPTED_IN
    return None


def relies_on_auto_opt_in(consent: ConsentState | str | None) -> bool:
    """Whether texting under ``consent`` rests on auto opt-in (nobody opted in explicitly),
    so that sending records an ``auto`` opt-in in the audit trail."""
    return consent != ConsentState.OPTED_IN


def route(
    r: RecipientFacts,
    *,
    policy: RoutingPolicy,
    quota_left: int | None,
    cost: int,
    now: datetime,
    notice_cost: int = 1,
) -> Decision:
    """Router steps 2-6 for one recipient.

    ``cost`` is what this message costs against the quota (``quota.message_cost``), and
    ``notice_cost`` what the opt-in notice costs when one is needed (1 when the quota
    counts messages; its segments when it counts segments). ``now`` must be
    timezone-aware.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    if r.sms_e164 is None:
        return _fallback(r, Reason.NO_SMS_NUMBER, r.no_sms_reason, None)
    blocked = consent_block(r.consent, auto_opt_in=policy.auto_opt_in)
    if blocked is not None:
        return _fallback(r, blocked, None, r.consent_source)
    auto = relies_on_auto_opt_in(r.consent)
    notice = not r.texted_before
    total = cost + notice_cost if notice else cost
    if quota_left is not None and quota_left < total:
        return _fallback(r, Reason.QUOTA_EXHAUSTED, None, None)
    send_at = (
        None
        if policy.window is None
        else _deferral(now, policy.window, r.timezone or policy.institution_tz)
    )
    return Decision(
        Channel.SMS,
        Reason.SMS_OK if send_at is None else Reason.DEFERRED_QUIET_HOURS,
        send_at=send_at,
        needs_opt_in_notice=notice,
        auto_opt_in=auto,
        quota_cost=total,
    )


def _fallback(
    r: RecipientFacts,
    blocked: Reason,
    number_issue: str | None,
    source: ConsentSource | None,
) -> Decision:
    if r.email:
        return _blocked(Channel.EMAIL, blocked, blocked, number_issue, source)
    return _blocked(Channel.NONE, Reason.NO_EMAIL_NO_SMS, blocked, number_issue, source)


@lru_cache(maxsize=1024)
def _blocked(
    channel: Channel,
    reason: Reason,
    blocked: Reason,
    number_issue: str | None,
    source: ConsentSource | None,
) -> Decision:
    # Fallback decisions depend on nothing per recipient: share one immutable instance.
    return Decision(
        channel, reason, sms_blocked=blocked, number_issue=number_issue, consent_source=source
    )


@lru_cache(maxsize=4096)
def _deferral(now: datetime, window: SendingWindow, tz: str) -> datetime | None:
    # A campaign chunk routes thousands of recipients at one ``now`` across a handful of
    # zones: the answer is the same for all recipients in one zone.
    return next_allowed(now, window, zone(tz))


#: The notice that precedes the first SMS from a sender number to a recipient (DESIGN.md).
OPT_IN_NOTICE = (
    "You have been opted-in to receive messages from {staff}. Text STOP at any time to stop "
    "receiving messages. This message is intended for {student}."
)


def opt_in_notice(staff_name: str, student_name: str) -> str:
    """Return the opt-in notice for ``staff_name`` texting ``student_name``."""
    return OPT_IN_NOTICE.format(staff=staff_name.strip(), student=student_name.strip())
