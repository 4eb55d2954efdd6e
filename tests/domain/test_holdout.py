"""The holdout draw (exact, stratified, reproducible) and the outcome's pure rules."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError

from domain.campaign import CampaignRequest, PlanSummary
from domain.holdout import (
    MAX_SEED,
    Group,
    HoldoutError,
    Verdict,
    count_group,
    default_seed,
    draw_holdout,
    has_value,
    holdout_size,
    too_small,
    verdict,
)

PROGRAMS = ["Nursing", "Biology", "Welding", "Accounting", ""]


def students(n: int, programs: list[str] = PROGRAMS, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"S{i}", rng.choice(programs)) for i in range(n)]


@pytest.mark.parametrize(
    ("n", "pct", "expected"),
    [
        pytest.param(1000, 20, 200, id="20-of-1000"),
        pytest.param(1000, 12.5, 125, id="fraction"),
        pytest.param(7, 10, 1, id="0.7-rounds-up"),
        pytest.param(5, 10, 0, id="half-rounds-down"),
        pytest.param(15, 10, 1, id="1.5-rounds-down"),
        pytest.param(3, 50, 1, id="never-more-than-half"),
        pytest.param(1, 50, 0, id="one-student"),
        pytest.param(0, 20, 0, id="nobody"),
        pytest.param(10, 0, 0, id="zero"),
    ],
)
def test_the_total_is_exactly_pct_of_n_rounded(n: int, pct: float, expected: int) -> None:
    assert holdout_size(pct, n) == expected
    assert len(draw_holdout(students(n), pct, seed=1)) == expected


@pytest.mark.parametrize("seed", [0, 1, 2, 99, MAX_SEED])
@pytest.mark.parametrize("n", [1, 2, 9, 31, 1000])
@pytest.mark.parametrize("pct", [0.5, 10, 20, 33.3, 50])
def test_the_stratified_count_is_exact_for_any_mix_of_programs(
    seed: int, n: int, pct: float
) -> None:
    group = students(n, seed=seed % 1000)
    held = draw_holdout(group, pct, seed)
    assert len(held) == holdout_size(pct, n)
    assert held <= {sis_id for sis_id, _ in group}


def test_every_program_gets_its_share_within_one_student() -> None:
    group = students(1000)
    held = draw_holdout(group, 20, seed=5)
    sizes = Counter(program for _, program in group)
    taken = Counter(program for sis_id, program in group if sis_id in held)
    assert sum(taken.values()) == 200
    for program, size in sizes.items():
        assert abs(taken[program] - 0.2 * size) < 1, (program, size, taken[program])


def test_largest_remainders_decide_who_gets_the_students_left_over() -> None:
    # Owed at 10%: A 1.9, B 1.2, C 0.4 → 3.5 → 3 in all: floors 1 + 1 + 0, then A (0.9).
    group = [(f"A{i}", "A") for i in range(19)]
    group += [(f"B{i}", "B") for i in range(12)]
    group += [(f"C{i}", "C") for i in range(4)]
    held = draw_holdout(group, 10, seed=3)
    assert Counter(sis_id[0] for sis_id in held) == {"A": 2, "B": 1}


def test_the_draw_does_not_depend_on_the_order_of_the_students() -> None:
    group = students(500)
    held = draw_holdout(group, 20, seed=11)
    for shuffle in range(5):
        mixed = list(group)
        random.Random(shuffle).shuffle(mixed)
        assert draw_holdout(mixed, 20, seed=11) == held


def test_the_same_seed_draws_the_same_students_and_another_seed_others() -> None:
    group = students(1000)
    first = draw_holdout(group, 20, seed=1)
    assert draw_holdout(group, 20, seed=1) == first
    second = draw_holdout(group, 20, seed=2)
    assert len(second) == 200 and second != first
    # Independent draws of 20% overlap by about 20% of 200 = 40, far from all 200.
    assert len(first & second) < 100


@pytest.mark.parametrize("pct", [-1, 50.01, 60, 100, float("nan"), float("inf")])
def test_a_share_outside_0_to_50_is_refused(pct: float) -> None:
    with pytest.raises(HoldoutError, match="holdout of"):
        draw_holdout(students(10), pct, seed=1)


def test_more_than_half_says_why() -> None:
    with pytest.raises(HoldoutError) as info:
        draw_holdout(students(10), 60, seed=1)
    assert str(info.value) == (
        "a holdout of 60% would keep more students out than it messages: choose at most 50%"
    )


def test_a_student_listed_twice_is_refused() -> None:
    with pytest.raises(HoldoutError, match="S1 is listed twice"):
        draw_holdout([("S1", "A"), ("S1", "B")], 20, seed=1)


def test_the_default_seed_comes_from_sender_message_and_audience_only() -> None:
    base = {"sender_id": "T1", "message": "Hi", "audience": {"caseload": ["T1"]}}
    seed = default_seed(**base)  # type: ignore[arg-type]
    assert seed == default_seed(**base)  # type: ignore[arg-type]
    assert 0 <= seed <= MAX_SEED
    assert default_seed(**{**base, "message": "Hello"}) != seed  # type: ignore[arg-type]
    assert default_seed(**{**base, "sender_id": "T2"}) != seed  # type: ignore[arg-type]
    assert default_seed(**{**base, "audience": {"caseload": ["T2"]}}) != seed  # type: ignore[arg-type]


def test_the_request_uses_its_seed_or_derives_one_that_ignores_time_and_dry_run() -> None:
    from datetime import UTC, datetime

    plain = CampaignRequest(sender_id="T1", message="Hi", audience={"caseload": ["T1"]})
    assert plain.holdout_pct == 0 and plain.holdout_seed is None
    later = plain.model_copy(update={"send_at": datetime(2030, 1, 1, tzinfo=UTC), "dry_run": True})
    assert later.holdout_seed_used() == plain.holdout_seed_used()
    given = plain.model_copy(update={"holdout_seed": 7})
    assert given.holdout_seed_used() == 7


@pytest.mark.parametrize(
    ("fields", "loc", "needle"),
    [
        pytest.param({"holdout_pct": 60}, "holdout_pct", "at most 50%", id="over-half"),
        pytest.param({"holdout_pct": -5}, "holdout_pct", "choose 0 to 50", id="negative"),
        pytest.param({"holdout_seed": -1}, "holdout_seed", "greater than or equal to 0", id="seed"),
        pytest.param({"holdout_seed": 2**31}, "holdout_seed", "less than or equal", id="big"),
    ],
)
def test_the_request_refuses_a_bad_holdout(fields: dict[str, float], loc: str, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        CampaignRequest(sender_id="T1", message="Hi", **fields)
    [error] = info.value.errors()
    assert error["loc"] == (loc,) and needle in error["msg"]


def test_the_plan_summary_reports_held_out_apart_from_recipients() -> None:
    summary = PlanSummary(recipients=8, sms=8, held_out=2)
    figures = summary.as_dict()
    assert (figures["recipients"], figures["held_out"]) == (8, 2)


# --- the outcome ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "record", "expected"),
    [
        pytest.param("status", "Inactive", ("inactive", [], "X"), True, id="status-any-case"),
        pytest.param("status", "active", ("inactive", [], "X"), False, id="status-other"),
        pytest.param("tags", " Registered ", ("active", ["registered"], "X"), True, id="tag"),
        pytest.param("tags", "reg", ("active", ["registered"], "X"), False, id="tag-not-prefix"),
        pytest.param("tags", "x", ("active", None, "X"), False, id="no-tags"),
        pytest.param("program", "nursing", ("active", [], "Nursing"), True, id="program"),
        pytest.param("program", "nursing", ("active", [], None), False, id="no-program"),
    ],
)
def test_has_value_compares_the_current_record(
    field: str, value: str, record: tuple[str, list[str] | None, str | None], expected: bool
) -> None:
    status, tags, program = record
    assert has_value(field, value, status=status, tags=tags, program=program) is expected


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(HoldoutError, match="unknown field 'risk'"):
        has_value("risk", "x", status=None, tags=None, program=None)


def test_count_group_counts_students_and_those_with_the_value() -> None:
    people = [("active", ["a"], None), ("active", ["b"], None), ("inactive", ["a", "b"], None)]
    assert count_group("tags", "a", people) == Group(students=3, with_value=2)
    assert Group(3, 2).share == pytest.approx(2 / 3)
    assert Group(0, 0).share is None


@pytest.mark.parametrize(
    ("messaged", "held", "reason"),
    [
        pytest.param(Group(100, 50), Group(29, 10), "held-out group has 29", id="small-group"),
        pytest.param(Group(29, 10), Group(100, 50), "messaged group has 29", id="small-messaged"),
        pytest.param(Group(100, 4), Group(40, 20), "4 student(s) with", id="few-with"),
        pytest.param(
            Group(100, 50),
            Group(40, 36),
            "36 student(s) with the value and 4 without",
            id="few-without",
        ),
        pytest.param(Group(30, 5), Group(30, 25), None, id="just-enough"),
    ],
)
def test_too_small_names_the_rule_that_failed(
    messaged: Group, held: Group, reason: str | None
) -> None:
    found = too_small(messaged, held)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_the_verdict_reads_the_interval() -> None:
    big, also_big = Group(100, 50), Group(50, 20)
    assert verdict(big, also_big, (-0.05, 0.2)) is Verdict.NO_DETECTABLE_DIFFERENCE
    assert verdict(big, also_big, (0.01, 0.2)) is Verdict.MESSAGED_HIGHER
    assert verdict(big, also_big, (-0.3, -0.01)) is Verdict.MESSAGED_LOWER
    assert verdict(big, Group(10, 5), (0.01, 0.2)) is Verdict.TOO_SMALL
    assert verdict(big, also_big, None) is Verdict.TOO_SMALL
