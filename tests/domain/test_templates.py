"""Message templates: what a staff member writes, what each student receives."""

from __future__ import annotations

import pytest

from domain.templates import VARIABLES, TemplateError, Variable, parse_template

STUDENT = {
    "first_name": "Alexandra",
    "preferred_name": "Alex",
    "last_name": "Nguyen",
    "sender_name": "Dr. Rivera",
    "advisor_name": "Sam Park",
    "program": "Nursing",
}

RENDER_CASES = [
    ("no-variables", "See you soon.", STUDENT, "See you soon."),
    (
        "every-variable",
        "{first_name}|{preferred_name}|{last_name}|{sender_name}|{advisor_name}|{program}",
        STUDENT,
        "Alexandra|Alex|Nguyen|Dr. Rivera|Sam Park|Nursing",
    ),
    ("repeated-variable", "{first_name} {first_name}", STUDENT, "Alexandra Alexandra"),
    (
        "preferred-falls-back-when-missing",
        "Hi {preferred_name}",
        {"first_name": "Alexandra"},
        "Hi Alexandra",
    ),
    (
        "preferred-falls-back-when-none",
        "Hi {preferred_name}",
        {"first_name": "Alexandra", "preferred_name": None},
        "Hi Alexandra",
    ),
    (
        "preferred-falls-back-when-blank",
        "Hi {preferred_name}",
        {"first_name": "Alexandra", "preferred_name": "  "},
        "Hi Alexandra",
    ),
    ("preferred-and-first-missing", "Hi {preferred_name}!", {}, "Hi !"),
    (
        "missing-advisor-renders-empty",
        "Advisor: {advisor_name}.",
        {"advisor_name": None},
        "Advisor: .",
    ),
    ("absent-key-renders-empty", "[{program}]", {}, "[]"),
    ("values-stripped", "Hi {first_name}!", {"first_name": "  Ana \n"}, "Hi Ana!"),
    ("escaped-braces", "{{first_name}} is {first_name}", STUDENT, "{first_name} is Alexandra"),
    ("lone-escaped-close", "a }} b", STUDENT, "a } b"),
    (
        "braces-in-value-are-text",
        "Hi {first_name}",
        {"first_name": "{last_name}"},
        "Hi {last_name}",
    ),
    ("multiline", "Hi {first_name},\nsee {advisor_name}.", STUDENT, "Hi Alexandra,\nsee Sam Park."),
    ("unicode", "¡Hola {first_name}! 😀", {"first_name": "José"}, "¡Hola José! 😀"),
]


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [c[1:] for c in RENDER_CASES],
    ids=[c[0] for c in RENDER_CASES],
)
def test_render(text: str, values: dict[str, str | None], expected: str) -> None:
    assert parse_template(text).render(values) == expected


def test_variables_are_the_documented_six() -> None:
    assert (
        {
            "first_name",
            "preferred_name",
            "last_name",
            "sender_name",
            "advisor_name",
            "program",
        }
        == VARIABLES
        == {v.value for v in Variable}
    )


def test_template_lists_the_variables_it_uses() -> None:
    template = parse_template("Hi {preferred_name}, {preferred_name}, see {advisor_name}")
    assert template.variables == {"preferred_name", "advisor_name"}


def test_missing_reports_variables_that_render_empty() -> None:
    template = parse_template("Hi {preferred_name}, your advisor is {advisor_name}")
    assert template.missing({"first_name": "Ana"}) == {"advisor_name"}
    assert template.missing({}) == {"preferred_name", "advisor_name"}
    assert template.missing(STUDENT) == frozenset()


ERROR_CASES = [
    ("unknown-variable", "Hi {name}", r"unknown template variable \{name\}", ("name",), None),
    (
        "typo-gets-suggestion",
        "Hi {frist_name}",
        r"\{frist_name\} \(did you mean \{first_name\}\?\)",
        ("frist_name",),
        None,
    ),
    (
        "spaces-inside-braces",
        "Hi { first_name }",
        r"\{ first_name \} \(did you mean \{first_name\}\?\)",
        (" first_name ",),
        None,
    ),
    (
        "every-unknown-named-once",
        "{a} {b} {a} {first_name}",
        r"unknown template variables \{a\}, \{b\}; allowed: \{first_name\}",
        ("a", "b"),
        None,
    ),
    ("wrong-case-is-unknown", "{First_Name}", r"\{First_Name\}", ("First_Name",), None),
    ("unclosed-brace", "Hi {first_name", r"'\{' that is never closed at line 1, column 4", (), 3),
    (
        "unclosed-before-next",
        "Hi {first {last_name}",
        r"'\{' that is never closed at line 1, column 4",
        (),
        3,
    ),
    ("single-close", "50% off}", r"single '\}' at line 1, column 8", (), 7),
    ("empty-braces", "Hi {}", r"empty '\{\}' at line 1, column 4", (), 3),
    ("position-on-second-line", "Hello\nHi {x", r"line 2, column 4", (), 9),
]


@pytest.mark.parametrize(
    ("text", "message", "unknown", "position"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_parse_errors(
    text: str, message: str, unknown: tuple[str, ...], position: int | None
) -> None:
    with pytest.raises(TemplateError, match=message) as info:
        parse_template(text)
    assert info.value.unknown == unknown
    assert info.value.position == position


def test_template_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown"):
        parse_template("{nope}")


def test_malformed_braces_reported_before_unknown_variables() -> None:
    with pytest.raises(TemplateError, match="never closed") as info:
        parse_template("{nope} {first_name")
    assert info.value.position == 7
