"""Urgent replies: the crisis and safety phrase table, kept honest.

One table, three kinds of rows: texts that must be urgent (true positives, every category),
harmless texts the simple matcher still flags (accepted false positives: better an advisor
reads a harmless text first than a crisis text late; each row names the phrase that trips
it, so a change to the list shows what it costs) and texts that must not be urgent (true
negatives, many of them one letter or one word away from a phrase).
"""

from __future__ import annotations

import pytest

from domain.config import DEFAULT_URGENT_REPLY_TEXT, ConfigError, SmsConfig, apply_setting
from domain.urgent import (
    ABUSE,
    CONFIGURED,
    DANGER,
    DEFAULT_URGENT_PHRASE_LIST,
    DEFAULT_URGENT_PHRASES,
    SELF_HARM,
    check_phrases,
    detect_urgent,
    urgent_category,
)

TRUE, ACCEPTED, NEGATIVE = "true positive", "accepted false positive", "true negative"

#: (row id, reply, phrase detected or None, kind of row).
TABLE = [
    # --- true positives: self-harm and suicide ---------------------------------------
    ("kill-myself", "I want to kill myself", "kill myself", TRUE),
    # Found by trying to break it: "my self" apart, and forms the first list missed.
    ("kill-my-self-apart", "i want to kill my self", "kill myself", TRUE),
    ("cut-my-self-apart", "i cut my self again", "cut myself", TRUE),
    ("hang", "i want to hang myself", "hang myself", TRUE),
    ("pills", "i took a bunch of pills", "took a bunch of pills", TRUE),
    ("wrists", "thinking about slit my wrists", "slit my wrists", TRUE),
    ("es-suicidar", "me quiero suicidar", "me quiero suicidar", TRUE),
    ("misspelled", "im feeling sucidal", "sucidal", TRUE),
    ("not-alive", "I wish I wasn't alive", "wish i was not alive", TRUE),
    ("he-hit-me", "he hit me last night", "he hit me", TRUE),
    ("dad-beats-me", "my dad beats me", "dad beats me", TRUE),
    ("choking", "he's choking me", "choking me", TRUE),
    ("got-a-gun", "he's got a gun", "got a gun", TRUE),
    ("beats-me-idiom", "beats me, no idea when it's due", None, NEGATIVE),
    ("dont-want-to-live", "i dont want to live anymore", "don't want to live", TRUE),
    ("curly-apostrophe", "I don’t want to live anymore", "don't want to live", TRUE),
    ("wanna", "honestly i dont wanna live", "don't want to live", TRUE),
    ("do-not-spelled-out", "I do not want to live", "don't want to live", TRUE),
    ("want-to-die-shouted", "I WANT TO DIE", "want to die", TRUE),
    ("repeated-spaces", "I   want  to    die", "want to die", TRUE),
    ("suicide", "I keep thinking about suicide", "suicide", TRUE),
    ("suicidal", "I feel suicidal tonight", "suicidal", TRUE),
    ("cutting", "I've been cutting myself again", "cutting myself", TRUE),
    ("overdose", "I took an overdose", "overdose", TRUE),
    ("no-reason", "There's no reason to live", "no reason to live", TRUE),
    ("line-break", "no reason\nto live", "no reason to live", TRUE),
    ("better-off", "Everyone would be better off without me.", "better off without me", TRUE),
    ("end-my-life", "I'm going to end my life", "end my life", TRUE),
    ("punctuation-inside", "i want to kill... myself", "kill myself", TRUE),
    ("fullwidth", "ｋｉｌｌ ｍｙｓｅｌｆ", "kill myself", TRUE),
    ("longest-at-one-place", "I am going to hurt myself", "going to hurt myself", TRUE),
    ("spanish", "Me quiero MORIR", "me quiero morir", TRUE),
    # --- true positives: abuse -------------------------------------------------------
    ("boyfriend-hits", "My boyfriend hits me", "hits me", TRUE),
    ("not-safe-at-home", "I'm not safe at home", "not safe at home", TRUE),
    ("dont-feel-safe", "I don't feel safe at home", "don't feel safe at home", TRUE),
    ("being-abused", "I'm being abused", "being abused", TRUE),
    ("beats-me-up", "my dad beats me up when he drinks", "dad beats me", TRUE),
    ("scared-to-go-home", "im scared to go home", "scared to go home", TRUE),
    ("raped", "I was raped last weekend", "raped", TRUE),
    ("threatened", "He threatened to kill me", "threatened to kill me", TRUE),
    # --- true positives: immediate danger --------------------------------------------
    ("following", "Someone is following me right now", "someone is following me", TRUE),
    ("following-contracted", "someone's following me", "someone is following me", TRUE),
    ("in-danger", "I'm in danger", "in danger", TRUE),
    ("has-a-gun", "he has a gun", "has a gun", TRUE),
    ("gonna-kill-me", "He's gonna kill me", "going to kill me", TRUE),
    ("going-to-hurt", "my ex said he is going to hurt me", "going to hurt", TRUE),
    ("active-shooter", "there is an active shooter in the library", "active shooter", TRUE),
    ("fear-for-life", "I fear for my life", "fear for my life", TRUE),
    ("spanish-danger", "Estoy en peligro", "estoy en peligro", TRUE),
    # --- accepted false positives: harmless, flagged anyway --------------------------
    (
        "fp-embarrassed",
        "I want to die, I tripped in front of the whole class lol",
        "want to die",
        ACCEPTED,
    ),
    ("fp-hyperbole", "lol I'm killing myself over this essay", "killing myself", ACCEPTED),
    ("fp-coursework", "My psych paper is on suicide prevention", "suicide", ACCEPTED),
    ("fp-failing", "I'm in danger of failing chemistry", "in danger", ACCEPTED),
    ("fp-mom", "My mom is gonna kill me when she sees this grade", "going to kill me", ACCEPTED),
    ("fp-gpa", "This exam is going to hurt my GPA", "going to hurt", ACCEPTED),
    ("fp-song", "That song hits me right in the feels", "hits me", ACCEPTED),
    ("fp-police", "Should I call the police about my stolen bike?", "call the police", ACCEPTED),
    ("fp-coffee", "I overdosed on coffee before the final", "overdosed", ACCEPTED),
    ("fp-negated", "Don't worry, I'm not going to hurt myself", "going to hurt myself", ACCEPTED),
    # --- true negatives --------------------------------------------------------------
    ("died-laughing", "I died laughing", None, NEGATIVE),
    ("deadline", "The deadline is Friday", None, NEGATIVE),
    ("stop", "stop", None, NEGATIVE),
    ("homework-killing-me", "this homework is killing me", None, NEGATIVE),
    ("die-of-embarrassment", "I could die of embarrassment", None, NEGATIVE),
    ("upskill", "I need to upskill myself before the internship", None, NEGATIVE),
    ("diet", "I want to diet before spring break", None, NEGATIVE),
    ("dangerous", "We're in dangerous territory with this project", None, NEGATIVE),
    # "he hit me" must be urgent; the slang "hit me up" (contacted me) pays for it.
    ("hit-me-up", "She hit me up yesterday about tutoring", "she hit me", ACCEPTED),
    ("dying-to-know", "I'm dying to know my grade", None, NEGATIVE),
    ("safe-at-home", "I'm safe at home now, thanks", None, NEGATIVE),
    ("following-up", "Just following up on my transcript", None, NEGATIVE),
    ("help-fafsa", "Can you help me with my FAFSA?", None, NEGATIVE),
    ("grape", "grape juice at the club fair", None, NEGATIVE),
]


@pytest.mark.parametrize(
    ("body", "expected"), [pytest.param(r[1], r[2], id=f"{r[3]}:{r[0]}") for r in TABLE]
)
def test_the_table(body: str, expected: str | None) -> None:
    assert detect_urgent(body) == expected


def test_the_table_has_enough_rows_of_each_kind_across_categories() -> None:
    kinds = [row[3] for row in TABLE]
    assert (kinds.count(TRUE), kinds.count(ACCEPTED), kinds.count(NEGATIVE)) == (48, 11, 14)
    categories = {urgent_category(row[2]) for row in TABLE if row[3] == TRUE and row[2]}
    assert categories == {SELF_HARM, ABUSE, DANGER}
    # Every phrase a row expects is a default phrase, as configured.
    assert {row[2] for row in TABLE if row[2]} <= set(DEFAULT_URGENT_PHRASE_LIST)


def test_every_default_phrase_is_urgent_in_a_sentence_and_has_its_category() -> None:
    for category, phrases in DEFAULT_URGENT_PHRASES.items():
        for phrase in phrases:
            found = detect_urgent(f"Hi, {phrase.upper()}!")
            assert found is not None, phrase
            assert urgent_category(found) == category, phrase


def test_the_default_list_is_clean_and_is_the_configuration_default() -> None:
    assert check_phrases(DEFAULT_URGENT_PHRASE_LIST) == list(DEFAULT_URGENT_PHRASE_LIST)
    config = SmsConfig()
    assert config.urgent_phrases == list(DEFAULT_URGENT_PHRASE_LIST)
    assert (config.urgent_auto_reply, config.urgent_reply_text) == (
        False,
        DEFAULT_URGENT_REPLY_TEXT,
    )
    assert "988" in config.urgent_reply_text and "911" in config.urgent_reply_text


def test_a_configured_list_replaces_the_defaults() -> None:
    config = apply_setting(SmsConfig(), "urgent_phrases", "kms, panic attack ,, KMS")
    assert config.urgent_phrases == ["kms", "panic attack"]  # blanks and repeats dropped
    assert detect_urgent("omg kms", config.urgent_phrases) == "kms"
    assert detect_urgent("having a PANIC  attack", config.urgent_phrases) == "panic attack"
    assert urgent_category("panic attack") == CONFIGURED
    # The defaults are gone: "kill myself" is no longer in the list.
    assert detect_urgent("I want to kill myself", config.urgent_phrases) is None
    # Empty: no reply is urgent.
    off = apply_setting(config, "urgent_phrases", "")
    assert off.urgent_phrases == [] and detect_urgent("I want to die", off.urgent_phrases) is None


def test_the_automatic_answer_is_configuration() -> None:
    config = apply_setting(SmsConfig(), "urgent_auto_reply", "on")
    assert config.urgent_auto_reply is True
    text = "Call or text 988, any time. Campus police: 555-0100."
    config = apply_setting(config, "urgent_reply_text", f"  {text} ")
    assert config.urgent_reply_text == text  # commas kept: a text, not a list


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        pytest.param("urgent_phrases", "kms, !!!", "has no words", id="phrase-without-words"),
        pytest.param("urgent_phrases", "x" * 201, "longer than 200", id="phrase-too-long"),
        pytest.param("urgent_reply_text", "   ", "at least 1 character", id="blank-answer"),
        pytest.param("urgent_auto_reply", "sometimes", "expected true or false", id="bad-bool"),
    ],
)
def test_bad_urgent_settings_are_refused(key: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_setting(SmsConfig(), key, text)


def test_a_blank_answer_is_refused_when_built_directly() -> None:
    with pytest.raises(ValueError, match="cannot be empty"):
        SmsConfig(urgent_reply_text="   ")
