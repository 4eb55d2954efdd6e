"""The consent rules in one place: opt-out scope and what each reply does to consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.config import OptOutScope
from domain.consent import (
    DECISION_SOURCES,
    INSTITUTION,
    ConsentChange,
    keyword_consent_changes,
    late_keyword_reason,
    opt_out_scope,
    out_of_order,
)
from domain.keywords import Keyword
from domain.routing import ConsentSource, ConsentState, Reason, consent_block

SENDER = "+12125550100"


@pytest.mark.parametrize(
    ("scope", "sender", "expected"),
    [
        pytest.param(OptOutScope.institution, SENDER, INSTITUTION, id="institution"),
        pytest.param(OptOutScope.sender, SENDER, SENDER, id="per-sender"),
        pytest.param(OptOutScope.sender, None, INSTITUTION, id="per-sender-unknown-number"),
        pytest.param("sender", "", INSTITUTION, id="per-sender-empty-number"),
    ],
)
def test_opt_out_scope(scope: OptOutScope | str, sender: str | None, expected: str) -> None:
    assert opt_out_scope(scope, sender) == expected


OUT, IN, PAUSED = ConsentState.OPTED_OUT, ConsentState.OPTED_IN, ConsentState.PAUSED_FOR_REVIEW


@pytest.mark.parametrize(
    ("keyword", "phrase", "scope", "institution", "expected"),
    [
        pytest.param(
            Keyword.STOP, None, INSTITUTION, None,
            [ConsentChange(OUT, ConsentSource.STOP, INSTITUTION, "replied 'stop'")],
            id="stop-institution",
        ),
        pytest.param(
            Keyword.STOP, None, SENDER, "opted_in",
            [ConsentChange(OUT, ConsentSource.STOP, SENDER, "replied 'stop'")],
            id="stop-per-sender",
        ),
        pytest.param(
            Keyword.START, None, INSTITUTION, "paused_for_review",
            [ConsentChange(IN, ConsentSource.START, INSTITUTION, "replied 'stop'")],
            id="start-institution-lifts-pause-in-place",
        ),
        pytest.param(
            Keyword.START, None, SENDER, "paused_for_review",
            [
                ConsentChange(IN, ConsentSource.START, SENDER, "replied 'stop'"),
                ConsentChange(
                    IN, ConsentSource.START, INSTITUTION, "replied 'stop' after a review pause"
                ),
            ],
            id="start-per-sender-also-lifts-institution-pause",
        ),
        pytest.param(
            Keyword.START, None, SENDER, "opted_out",
            [ConsentChange(IN, ConsentSource.START, SENDER, "replied 'stop'")],
            id="start-per-sender-leaves-institution-opt-out",
        ),
        pytest.param(
            Keyword.NONE, "wrong number", SENDER, None,
            [ConsentChange(PAUSED, ConsentSource.REPLY_REVIEW, INSTITUTION,
                           "reply flagged for review: 'wrong number'")],
            id="flagged-pauses-institution-wide",
        ),
        pytest.param(Keyword.NONE, "wrong number", SENDER, "opted_out", [],
                     id="flagged-after-opt-out-changes-nothing"),
        pytest.param(Keyword.NONE, None, INSTITUTION, None, [], id="plain-reply"),
        pytest.param(Keyword.HELP, None, INSTITUTION, None, [], id="help"),
    ],
)  # fmt: skip
def test_keyword_consent_changes(
    keyword: Keyword,
    phrase: str | None,
    scope: str,
    institution: str | None,
    expected: list[ConsentChange],
) -> None:
    got = keyword_consent_changes(
        keyword, phrase, said="stop", scope=scope, institution_status=institution
    )
    assert got == expected


@pytest.mark.parametrize(
    ("consent", "auto", "expected"),
    [
        pytest.param(None, True, None, id="never-asked-auto-on"),
        pytest.param(None, False, Reason.NOT_OPTED_IN, id="never-asked-auto-off"),
        pytest.param(ConsentState.UNKNOWN, False, Reason.NOT_OPTED_IN, id="unknown-auto-off"),
        pytest.param("opted_in", False, None, id="opted-in-stored-string"),
        pytest.param("opted_out", True, Reason.OPTED_OUT, id="opted-out"),
        pytest.param("paused_for_review", True, Reason.REVIEW_PENDING, id="paused-auto-on"),
        pytest.param(PAUSED, False, Reason.REVIEW_PENDING, id="paused-auto-off"),
    ],
)
def test_the_one_consent_gate(
    consent: ConsentState | str | None, auto: bool, expected: Reason | None
) -> None:
    assert consent_block(consent, auto_opt_in=auto) == expected


T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("said", "last", "expected"),
    [
        pytest.param(T0, None, False, id="no-decision-yet"),
        pytest.param(T0 + timedelta(seconds=30), T0, False, id="sent-after-the-decision"),
        pytest.param(T0 - timedelta(minutes=10), T0, True, id="listed-late-after-a-decision"),
        pytest.param(T0, T0 + timedelta(milliseconds=700), False, id="same-second-applies"),
        pytest.param(T0 - timedelta(seconds=1), T0 + timedelta(milliseconds=1), True,
                     id="one-second-older"),
    ],
)  # fmt: skip
def test_keywords_follow_the_students_order(
    said: datetime, last: datetime | None, expected: bool
) -> None:
    assert out_of_order(said, last) is expected


def test_auto_opt_in_is_no_decision_but_everything_else_is() -> None:
    assert ConsentSource.AUTO not in DECISION_SOURCES
    assert set(ConsentSource) - DECISION_SOURCES == {ConsentSource.AUTO}


def test_the_trail_says_why_a_late_keyword_changed_nothing() -> None:
    reason = late_keyword_reason(Keyword.START, T0 - timedelta(minutes=10), T0)
    assert reason == (
        "START sent 2026-12-07 09:50:00 UTC was listed late; not applied: consent was "
        "decided after it (2026-12-07 10:00:00 UTC)"
    )
