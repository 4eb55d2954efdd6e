"""Carrier keywords, revocation phrases and near misses: what a reply does to consent."""

from __future__ import annotations

import pytest

from domain.config import ConfigError, SmsConfig, apply_setting
from domain.keywords import (
    DEFAULT_KEYWORD_LANGUAGES,
    KEYWORDS,
    NOT_NEAR_MISSES,
    OPT_OUT_VARIANTS,
    Keyword,
    check_languages,
    classify_keyword,
    fold,
    near_miss,
)
from domain.revocation import DEFAULT_REVOCATION_PHRASES, detect_revocation, normalize_text

#: One row per keyword per language, as the tables in domain/keywords.py and docs/replies.md
#: list them: (language, keyword, kind). ``test_every_listed_keyword_has_a_row`` keeps the
#: two in step.
LISTED = [
    *[("en", w, Keyword.STOP) for w in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL")],
    *[("en", w, Keyword.STOP) for w in ("END", "QUIT", "REVOKE", "OPTOUT")],
    *[("en", w, Keyword.START) for w in ("START", "YES", "UNSTOP")],
    *[("en", w, Keyword.HELP) for w in ("HELP", "INFO")],
    *[("es", w, Keyword.STOP) for w in ("PARAR", "ALTO", "CANCELAR", "DETENER", "BAJA")],
    ("es", "DESUSCRIBIR", Keyword.STOP),
    *[("es", w, Keyword.START) for w in ("COMENZAR", "INICIAR")],
    ("es", "AYUDA", Keyword.HELP),
    *[("fr", w, Keyword.STOP) for w in ("ARRÊT", "ARRÊTE", "ARRÊTER", "ANNULER")],
    *[("fr", w, Keyword.STOP) for w in ("DÉSABONNER", "DÉSINSCRIRE")],
    *[("fr", w, Keyword.START) for w in ("COMMENCER", "RÉABONNER")],
    ("fr", "AIDE", Keyword.HELP),
]


def test_every_listed_keyword_has_a_row() -> None:
    listed = {
        (lang, word, kind)
        for lang, kinds in KEYWORDS.items()
        for kind, words in kinds.items()
        for word in words
    }
    assert set(LISTED) == listed
    assert len(LISTED) == len(listed)


@pytest.mark.parametrize(
    ("language", "word", "kind"), LISTED, ids=[f"{lang}-{word}" for lang, word, _ in LISTED]
)
def test_each_keyword_in_its_language(language: str, word: str, kind: Keyword) -> None:
    languages = ["en", language]
    assert classify_keyword(word, languages) is kind
    assert classify_keyword(word.lower(), languages) is kind
    assert classify_keyword(fold(word), languages) is kind  # typed without accents
    assert classify_keyword(f" {word.capitalize()}! ", languages) is kind
    if language != "en":
        assert classify_keyword(word, ["en"]) is Keyword.NONE  # only when configured


KEYWORD_CASES = [
    # case, surrounding whitespace, punctuation and symbols are ignored
    ("lowercase", "stop", Keyword.STOP),
    ("mixed-case", "sToP", Keyword.STOP),
    ("trailing-period", "Stop.", Keyword.STOP),
    ("spaces-and-bang", " stop! ", Keyword.STOP),
    ("bangs", "Stop!!!", Keyword.STOP),
    ("newline", "STOP\n", Keyword.STOP),
    ("quoted", '"stop"', Keyword.STOP),
    ("emoji-after", "Stop 🛑", Keyword.STOP),
    ("emoji-before", "🛑🛑 STOP", Keyword.STOP),
    ("fullwidth-letters", "ＳＴＯＰ", Keyword.STOP),
    ("yes-with-bang", "Yes!!", Keyword.START),
    ("help-question", "help?", Keyword.HELP),
    ("info-ellipsis", "...info...", Keyword.HELP),
    # accents folded either way
    ("accent-as-written", "Arrêt", Keyword.STOP),
    ("accent-left-out", "ARRET", Keyword.STOP),
    ("accent-added", "Párar", Keyword.STOP),
    ("accent-decomposed", "Arre\u0302t", Keyword.STOP),
    # spelled out letter by letter
    ("spelled-spaces", "S T O P", Keyword.STOP),
    ("spelled-dots", "s.t.o.p", Keyword.STOP),
    ("spelled-dots-trailing", "S.T.O.P.", Keyword.STOP),
    ("spelled-dashes", "S-T-O-P", Keyword.STOP),
    ("spelled-mixed", "s - t. o p!", Keyword.STOP),
    ("spelled-accents", "A R R Ê T", Keyword.STOP),
    ("spelled-yes", "Y E S", Keyword.START),
    ("spelled-help", "h.e.l.p", Keyword.HELP),
    # the same keyword repeated
    ("repeated", "STOP STOP", Keyword.STOP),
    ("repeated-punctuated", "stop, stop!!", Keyword.STOP),
    ("repeated-three-times", "Stop stop STOP", Keyword.STOP),
    ("repeated-newlines", "STOP\nSTOP\n", Keyword.STOP),
    ("repeated-spanish", "Alto alto", Keyword.STOP),
    ("repeated-accents-differ", "arrêt arret", Keyword.STOP),
    ("repeated-yes", "yes yes", Keyword.START),
    # not the whole message: not a keyword (review decides, see detect_revocation)
    ("stop-texting-me", "stop texting me", Keyword.NONE),
    ("stop-please", "stop please", Keyword.NONE),
    ("two-different-keywords", "stop alto", Keyword.NONE),
    ("stop-then-start", "STOP START", Keyword.NONE),
    ("inner-punctuation", "st.op", Keyword.NONE),
    ("split-in-two", "ST OP", Keyword.NONE),
    ("spelled-wrong", "S T O P P", Keyword.NONE),
    ("spelled-then-word", "S T O P please", Keyword.NONE),
    ("yes-sentence", "yes I will be there", Keyword.NONE),
    ("help-sentence", "I need help with FAFSA", Keyword.NONE),
    ("the-end", "the end", Keyword.NONE),
    ("weekend", "weekend", Keyword.NONE),
    ("stop-by", "Stop by my office tomorrow", Keyword.NONE),
    ("cant-stop-laughing", "I can't stop laughing", Keyword.NONE),
    ("parar-sentence", "parar en la esquina", Keyword.NONE),
    ("alto-sentence", "el volumen está muy alto", Keyword.NONE),
    ("arret-sentence", "arrêt de bus devant le campus", Keyword.NONE),
    ("near-miss-stops", "stops", Keyword.NONE),
    ("near-miss-stopp", "stopp", Keyword.NONE),
    ("near-miss-stahp", "stahp", Keyword.NONE),
    ("near-miss-starts", "started", Keyword.NONE),
    ("near-miss-yeah", "yeah", Keyword.NONE),
    ("near-miss-information", "information", Keyword.NONE),
    ("digit-inside", "st0p", Keyword.NONE),
    ("empty", "", Keyword.NONE),
    ("only-punctuation", "?!", Keyword.NONE),
    ("only-emoji", "🛑", Keyword.NONE),
    ("single-letter", "s", Keyword.NONE),
    ("long-repetition", "stop " * 40, Keyword.NONE),  # longer than one SMS segment
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in KEYWORD_CASES], ids=[c[0] for c in KEYWORD_CASES]
)
def test_classify_keyword(body: str, expected: Keyword) -> None:
    assert classify_keyword(body) is expected


#: The five opt-out variants of the issue that were texted again: each opts out, or goes
#: to review; none is an ordinary reply any more.
ISSUE_VARIANTS = [
    ("S T O P", Keyword.STOP, None),
    ("STOP STOP", Keyword.STOP, None),
    ("Arrêt", Keyword.STOP, None),
    ("Parar", Keyword.STOP, None),
    ("stahp", Keyword.NONE, "stahp"),
]


@pytest.mark.parametrize(
    ("body", "keyword", "flag"), ISSUE_VARIANTS, ids=[v[0] for v in ISSUE_VARIANTS]
)
def test_issue_variants_opt_out_or_go_to_review(
    body: str, keyword: Keyword, flag: str | None
) -> None:
    # As the poll does: review is only asked about what is not a keyword.
    assert classify_keyword(body) is keyword
    if keyword is Keyword.NONE:
        assert detect_revocation(body) == flag


def test_languages_are_configuration() -> None:
    assert classify_keyword("Parar", ["en", "es"]) is Keyword.STOP
    assert classify_keyword("Parar", ["en", "fr"]) is Keyword.NONE
    assert classify_keyword("Arrêt", ["en", "es"]) is Keyword.NONE
    assert classify_keyword("AIDE", ["fr", "en"]) is Keyword.HELP
    assert classify_keyword("STOP", ["en"]) is Keyword.STOP
    # near misses and keyword-only messages follow the same languages
    assert detect_revocation("para", languages=["en", "es"]) == "para"
    assert detect_revocation("para", languages=["en"]) is None
    assert detect_revocation("Alto por favor", languages=["en", "fr"]) is None


@pytest.mark.parametrize(
    "languages",
    [["en", "de"], ["EN", "xx"], ["es"], []],
    ids=["unknown-language", "unknown-language-upper", "english-left-out", "empty"],
)
def test_unknown_or_incomplete_languages_are_refused(languages: list[str]) -> None:
    with pytest.raises(ValueError, match="allowed: en, es, fr"):
        classify_keyword("STOP", languages)


def test_check_languages_cleans() -> None:
    assert check_languages([" FR", "en", "fr", "Es "]) == ["fr", "en", "es"]
    assert list(DEFAULT_KEYWORD_LANGUAGES) == check_languages(DEFAULT_KEYWORD_LANGUAGES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("en,es", ["en", "es"], id="two"),
        pytest.param(" EN , fr ,", ["en", "fr"], id="spaces-case-trailing-comma"),
        pytest.param("en,es,es", ["en", "es"], id="repeat-dropped"),
        pytest.param("en", ["en"], id="english-only"),
    ],
)
def test_config_set_keyword_languages(text: str, expected: list[str]) -> None:
    config = apply_setting(SmsConfig(), "keyword_languages", text)
    assert config.keyword_languages == expected
    assert SmsConfig().keyword_languages == ["en", "es", "fr"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("en,de", "unknown keyword language 'de'; allowed: en, es, fr", id="unknown"),
        pytest.param("es,fr", "en cannot be left out.*allowed: en, es, fr", id="no-english"),
        pytest.param("", "en cannot be left out", id="empty"),
    ],
)
def test_config_set_keyword_languages_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"keyword_languages: invalid value.*{message}"):
        apply_setting(SmsConfig(), "keyword_languages", text)


def test_stored_config_without_languages_gets_the_defaults() -> None:
    stored = SmsConfig().model_dump(mode="json")
    del stored["keyword_languages"]
    assert SmsConfig.model_validate(stored).keyword_languages == ["en", "es", "fr"]


def test_keyword_lists_are_consistent() -> None:
    kinds: dict[str, set[Keyword]] = {}
    for lists in KEYWORDS.values():
        assert set(lists) == {Keyword.STOP, Keyword.START, Keyword.HELP}
        for kind, words in lists.items():
            for word in words:
                assert word == word.upper() and word.isalpha()
                kinds.setdefault(fold(word), set()).add(kind)
    assert {w: k for w, k in kinds.items() if len(k) > 1} == {}  # one kind per word
    assert set(OPT_OUT_VARIANTS) == set(KEYWORDS)
    assert set(DEFAULT_KEYWORD_LANGUAGES) <= set(KEYWORDS)
    # variants and everyday words are never keywords themselves
    for word in [*(v for vs in OPT_OUT_VARIANTS.values() for v in vs), *NOT_NEAR_MISSES]:
        assert classify_keyword(word) is Keyword.NONE, word


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
    # opt-out keywords only, in the configured languages, with politeness around them
    ("Alto por favor", "alto por favor"),
    ("Parar, gracias", "parar gracias"),
    ("Arrêt s'il vous plaît", "arret sil vous plait"),
    ("ARRET SVP", "arret svp"),
    ("stop alto", "stop alto"),
    ("STOP STOP please", "stop stop please"),
    ("please stop stop", "please stop stop"),
    ("end please", "end please"),
]


#: Near misses of an opt-out keyword: flagged for review, never opted out.
NEAR_MISSES = [
    ("stopp", "stopp"),
    ("STOPPPP", "stopppp"),
    ("Stoooop!!", "stoooop"),
    ("sstop", "sstop"),
    ("sotp", "sotp"),
    ("stpo", "stpo"),
    ("stp", "stp"),
    ("st0p", "st0p"),
    ("stops", "stops"),
    ("st.op", "st op"),
    ("ST OP", "st op"),
    ("S T O P P", "s t o p p"),
    ("stopp stopp", "stopp stopp"),
    ("ok stahp", "ok stahp"),
    ("stahp please", "stahp please"),
    ("unsubscibe", "unsubscibe"),
    ("unsusbcribe", "unsusbcribe"),
    ("cancle", "cancle"),
    ("Quitt", "quitt"),
    ("revoek", "revoek"),
    ("opt-out", "opt out"),  # a stop command already
    # listed variants
    ("stahp", "stahp"),
    ("STAHP!!", "stahp"),
    ("stawp", "stawp"),
    ("Stopit", "stopit"),
    ("Pare", "pare"),
    ("¡Basta!", "basta"),
    ("Cessez", "cessez"),
    ("Stoppez", "stoppez"),
    # Spanish and French near misses
    ("para", "para"),
    ("Parrar", "parrar"),
    ("detenr", "detenr"),
    ("Arretez", "arretez"),
    ("Arrêttez!", "arrettez"),
    ("annulez", "annulez"),
    ("desabonez", "desabonez"),
    # the price of the rule: rare whole-message words one edit from a keyword
    ("top", "top"),
    ("bajo", "bajo"),
]


@pytest.mark.parametrize(("body", "flag"), NEAR_MISSES, ids=[n[0] for n in NEAR_MISSES])
def test_near_miss_is_flagged_not_opted_out(body: str, flag: str) -> None:
    assert classify_keyword(body) is Keyword.NONE
    assert detect_revocation(body) == flag


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
    # neither keyword nor near miss
    "weekend",
    "Stop by my office tomorrow",
    "I can't stop laughing",
    "stopped",
    "bus stop",
    "top 5",
    "the end",
    "ended",
    "send",
    "and",
    "Go team",
    "Yes",
    # everyday words one edit from a keyword (NOT_NEAR_MISSES)
    "Also",
    "auto",
    "Quite!",
    "quiet",
    "Quiz?",
    "Step",
    "shop",
    # Spanish and French ordinary replies
    "parar en la esquina",
    "¿Dónde está la parada?",
    "parada",
    "Sí, gracias",
    "Gracias",
    "Alta",
    "el volumen está muy alto",
    "Merci!",
    "arrêt de bus devant le campus",
    "Bonjour, j'ai une question",
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
    ("accents", "Arrêt, S'IL VOUS PLAÎT", "arret sil vous plait"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in NORMALISE], ids=[c[0] for c in NORMALISE]
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_near_miss_needs_words() -> None:
    assert near_miss([]) is False
    assert near_miss(["st", "op"]) is True
    assert near_miss(["stop", "by"]) is False
