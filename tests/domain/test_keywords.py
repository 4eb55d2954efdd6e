"""Carrier keywords and revocation phrases: what a student's reply does to their consent."""

from __future__ import annotations

import pytest

from domain.keywords import (
    DEFAULT_REVOCATION_PHRASES,
    Keyword,
    classify_keyword,
    detect_revocation,
    normalize_text,
)

KEYWORD_CASES = [
    # every keyword, as sent
    *[(w, w, Keyword.STOP) for w in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL")],
    *[(w, w, Keyword.STOP) for w in ("END", "QUIT", "REVOKE", "OPTOUT")],
    *[(w, w, Keyword.START) for w in ("START", "YES", "UNSTOP")],
    *[(w, w, Keyword.HELP) for w in ("HELP", "INFO")],
    # case, surrounding whitespace, punctuation and symbols are ignored
    ("lowercase", "stop", Keyword.STOP),
    ("mixed-case", "sToP", Keyword.STOP),
    ("trailing-period", "Stop.", Keyword.STOP),
    ("spaces-and-bang", " stop! ", Keyword.STOP),
    ("newline", "STOP\n", Keyword.STOP),
    ("quoted", '"stop"', Keyword.STOP),
    ("emoji-after", "Stop 🛑", Keyword.STOP),
    ("fullwidth-letters", "ＳＴＯＰ", Keyword.STOP),
    ("yes-with-bang", "Yes!!", Keyword.START),
    ("help-question", "help?", Keyword.HELP),
    ("info-ellipsis", "...info...", Keyword.HELP),
    # not the whole message: not a keyword
    ("stop-texting-me", "stop texting me", Keyword.NONE),
    ("stop-please", "stop please", Keyword.NONE),
    ("two-keywords", "STOP STOP", Keyword.NONE),
    ("spelled-out", "S T O P", Keyword.NONE),
    ("inner-punctuation", "st.op", Keyword.NONE),
    ("yes-sentence", "yes I will be there", Keyword.NONE),
    ("help-sentence", "I need help with FAFSA", Keyword.NONE),
    ("the-end", "the end", Keyword.NONE),
    ("near-miss-stops", "stops", Keyword.NONE),
    ("near-miss-starts", "started", Keyword.NONE),
    ("near-miss-yeah", "yeah", Keyword.NONE),
    ("near-miss-information", "information", Keyword.NONE),
    ("empty", "", Keyword.NONE),
    ("only-punctuation", "?!", Keyword.NONE),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in KEYWORD_CASES], ids=[c[0] for c in KEYWORD_CASES]
)
def test_classify_keyword(body: str, expected: Keyword) -> None:
    assert classify_keyword(body) is expected


REVOCATIONS = [
    ("please stop texting me", "stop texting"),
    ("Please STOP texting me!!", "stop texting"),
    ("can you stop messaging me", "stop messaging"),
    ("Stop sending me these", "stop sending me"),
    ("stop contacting me", "stop contacting"),
    ("remove me from this list", "remove me from this list"),
    ("Remove me from your list please", "remove me from your list"),
    ("Please remove my number", "remove my number"),
    ("take me off your list", "take me off your list"),
    ("wrong number", "wrong number"),
    ("Sorry, wrong number.", "wrong number"),
    ("you have the wrong person", "wrong person"),
    ("this is not my number", "not my number"),
    ("don't text me", "dont text me"),
    ("Don’t text me again", "dont text me"),
    ("DONT TEXT ME", "dont text me"),
    ("do not text me", "do not text me"),
    ("do not contact me again", "do not contact me"),
    ("please unsubscribe me", "unsubscribe"),
    ("I want to unsubscribe", "unsubscribe"),
    ("opt me out", "opt me out"),
    ("I would like to opt out of these texts", "opt out of these"),
    ("no more texts please", "no more texts"),
    ("leave me alone", "leave me alone"),
    ("I don't know who this is, stop texting me", "stop texting"),
    ("Who is this?? Stop texting me", "stop texting"),
    ("delete my number", "delete my number"),
    # a stop command with only politeness around it
    ("Stop please", "stop please"),
    ("please stop", "please stop"),
    ("STOP NOW!!!", "stop now"),
    ("stop it", "stop it"),
    ("ok stop", "ok stop"),
    ("Remove me", "remove me"),
    ("remove me, thanks", "remove me thanks"),
    ("Take me off", "take me off"),
    ("unsubscribe please", "unsubscribe"),
    ("opt out please", "opt out please"),
]


@pytest.mark.parametrize(("body", "phrase"), REVOCATIONS, ids=[r[0] for r in REVOCATIONS])
def test_revocation_is_flagged(body: str, phrase: str) -> None:
    assert detect_revocation(body) == phrase


ORDINARY_REPLIES = [
    "I can't stop by today",
    "Is the deadline at the end of the week?",
    "Can you stop by my dorm",
    "quit my job so I have time now",
    "I'll stop by the office tomorrow at 3",
    "please stop by the financial aid office",
    "Don't stop sending me reminders, they help!",
    "please don't stop texting me, it helps",
    "never stop texting me these tips lol",
    "Can you remove the hold on my account?",
    "remove me from the waitlist for BIO 101",
    "Take me off the waitlist for MATH 120 please",
    "I need to cancel my appointment",
    "I want to opt out of the meal plan",
    "Thanks! See you at the end of the semester",
    "yes please sign me up",
    "What number should I call?",
    "My number changed, new one is 555-0100",
    "Can you text me the link?",
    "I'll message you when I'm out of class",
    "Is this the right number for advising?",
    "I want to start the nursing program",
    "ok",
    "thanks!",
    "",
]


@pytest.mark.parametrize("body", ORDINARY_REPLIES, ids=[b or "empty" for b in ORDINARY_REPLIES])
def test_ordinary_reply_is_not_flagged(body: str) -> None:
    assert detect_revocation(body) is None


def test_bare_keyword_also_reads_as_revocation() -> None:
    # Callers check classify_keyword first; if they do not, a bare STOP still never
    # slips through as an ordinary reply.
    assert detect_revocation("Stop") == "stop"


def test_phrases_are_configuration_and_normalised() -> None:
    phrases = ["  Quit BUGGING me!! ", "Don’t call"]
    assert detect_revocation("please quit bugging me", phrases) == "  Quit BUGGING me!! "
    assert detect_revocation("dont call", phrases) == "Don’t call"
    assert detect_revocation("please stop texting me", phrases) is None
    assert detect_revocation("anything", []) is None


def test_phrase_must_match_whole_words() -> None:
    assert detect_revocation("stop textingly", ["stop texting"]) is None
    assert detect_revocation("unstop texting", ["stop texting"]) is None


def test_phrase_does_not_span_sentences() -> None:
    assert detect_revocation("I had to stop. Texting is hard", ["stop texting"]) is None


def test_default_phrases_are_normalised_already() -> None:
    # The defaults are written in normalised form so that admins see them as they match.
    assert [normalize_text(p) for p in DEFAULT_REVOCATION_PHRASES] == list(
        DEFAULT_REVOCATION_PHRASES
    )


NORMALISE = [
    ("case", "HeLLo", "hello"),
    ("apostrophes", "don't can’t", "dont cant"),
    ("punctuation", "stop!!texting,me", "stop texting me"),
    ("repeated-spaces", "  a \t b\n c ", "a b c"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in NORMALISE], ids=[c[0] for c in NORMALISE]
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected
