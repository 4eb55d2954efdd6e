"""Urgent replies: crisis and safety phrases that put a student's reply in front of a person now.

A reply containing one of the configured phrases (``SmsConfig.urgent_phrases``, by default
:data:`DEFAULT_URGENT_PHRASES`) is *urgent*: the on-call addresses are emailed at once, the
staff member's notification says so first, the conversation sorts first in the inbox and,
when configured, the student gets the crisis line by text. Carrier keywords (STOP, HELP...)
are never urgent: call :func:`detect_urgent` only when :func:`~domain.keywords.classify_keyword`
said ``none``.

**Where the phrases come from.** The warning signs public crisis lines publish, in the words
students text:

* self-harm and suicide: the 988 Suicide & Crisis Lifeline's warning signs ("talking about
  wanting to die or to kill themselves", "feeling hopeless or having no reason to live",
  "being a burden to others", "feeling trapped or in unbearable pain"; 988lifeline.org,
  "Know the warning signs"), which the NIMH's "Warning Signs of Suicide" and the Crisis Text
  Line repeat; self-harm ("cutting", "hurting myself") from the same sources;
* abuse: the National Domestic Violence Hotline's signs of abuse (thehotline.org: being hit,
  threatened, afraid of a partner or at home) and RAINN's terms for sexual violence;
* immediate danger: the situations those lines say to call 911 for (someone threatening,
  following or armed; feeling in danger now).

A short set of Spanish phrases ("me quiero morir", "estoy en peligro"...) follows the same
sources' Spanish pages (988 answers in Spanish too).

**How matching works.** On a normalised form of the reply: case, accents and compatibility
forms folded (``"ＫＩＬＬ"`` is ``kill``), apostrophes dropped (``don't``, ``don’t`` and
``dont`` are one word), every other punctuation mark and line break a space, spaces
collapsed; then common contractions and their spoken forms are spelled out (``dont`` → ``do
not``, ``im`` → ``i am``, ``gonna`` → ``going to``, ``wanna`` → ``want to``...). Phrases are
normalised the same way, so the list need not repeat each spelling. A phrase matches when its
words appear consecutively as whole words (``"kill myself"`` does not match ``"upskill
myself"``, ``"want to die"`` does not match ``"want to diet"``); punctuation between them does
not matter (``"kill... myself"``).

**False positives are accepted on purpose.** The matcher does not understand negation,
jokes or hyperbole: ``"I'm not going to hurt myself"``, ``"my mom is gonna kill me when she
sees this grade"`` and ``"I'm in danger of failing chem"`` are urgent. Better an advisor
reads a harmless text first than a crisis text late; the test table
(``tests/domain/test_urgent.py``) lists the harmless texts the list still flags, so every
change to it shows what it costs. Phrases whose everyday use would page the on-call person
several times a day are left out (``"killing me"``, ``"kms"`` — also kilometres —, ``"I can't
do this anymore"``); a college may add them (``nudge config set urgent_phrases ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Final

from domain.revocation import normalize_text

#: Categories of urgent phrases (named in the on-call alert and the Prefect event).
SELF_HARM: Final = "self-harm or suicide"
ABUSE: Final = "abuse"
DANGER: Final = "immediate danger"
#: The category of a phrase a college added itself.
CONFIGURED: Final = "configured phrase"

#: The default crisis and safety phrases, by category (sources in the module docstring).
#: Written as people text them; matching normalises case, accents, apostrophes and
#: contractions, so ``"do not want to live"`` also matches "dont wanna live".
DEFAULT_URGENT_PHRASES: Final[Mapping[str, tuple[str, ...]]] = {
    SELF_HARM: (
        "kill myself",
        "killing myself",
        "going to kill myself",
        "end my life",
        "ending my life",
        "take my own life",
        "take my life",
        "want to die",
        "wish i was dead",
        "wish i were dead",
        "better off dead",
        "better off without me",
        "suicide",
        "suicidal",
        "hurt myself",
        "hurting myself",
        "going to hurt myself",
        "harm myself",
        "harming myself",
        "self harm",
        "selfharm",
        "cut myself",
        "cutting myself",
        "overdose",
        "overdosed",
        "overdosing",
        "no reason to live",
        "nothing to live for",
        "don't want to live",
        "don't want to be alive",
        "don't want to be here anymore",
        "not worth living",
        "end it all",
        "ending it all",
        "can't go on like this",
        "can't go on anymore",
        "a burden to everyone",
        "a burden to my family",
        "unalive myself",
        "me quiero morir",
        "quiero morir",
        "quiero morirme",
        "me quiero matar",
        "quiero matarme",
        "suicidarme",
        "no quiero vivir",
        "me quiero suicidar",
        "me voy a matar",
        "hang myself",
        "shoot myself",
        "slit my wrists",
        "cut my wrists",
        "took a bunch of pills",
        "took all my pills",
        "want to be dead",
        "wish i was not alive",
        "wish i were not alive",
        "sucidal",
        "suicidle",
    ),
    ABUSE: (
        "hits me",
        "hitting me",
        "beat me up",
        "beats me up",
        "beating me",
        "being abused",
        "abusing me",
        "abuses me",
        "abused me",
        "abusive relationship",
        "domestic violence",
        "rape",
        "raped",
        "sexual assault",
        "sexually assaulted",
        "molested",
        "choked me",
        "chokes me",
        "strangled me",
        "threatened to kill me",
        "threatening to kill me",
        "not safe at home",
        "don't feel safe at home",
        "afraid to go home",
        "scared to go home",
        "me golpea",
        "abusa de mi",
        "he hit me",
        "she hit me",
        "he beats me",
        "she beats me",
        "dad beats me",
        "mom beats me",
        "father beats me",
        "mother beats me",
        "boyfriend beats me",
        "girlfriend beats me",
        "partner beats me",
        "choking me",
        "is abusive",
    ),
    DANGER: (
        "in danger",
        "someone is following me",
        "somebody is following me",
        "someone following me",
        "being followed",
        "being stalked",
        "stalking me",
        "has a gun",
        "has a knife",
        "pulled a gun",
        "pulled a knife",
        "going to hurt",
        "going to kill me",
        "trying to kill me",
        "going to shoot",
        "active shooter",
        "shooter on campus",
        "fear for my life",
        "scared for my life",
        "afraid for my life",
        "held against my will",
        "kidnapped",
        "trying to break in",
        "call 911",
        "call the police",
        "estoy en peligro",
        "got a gun",
    ),
}

#: Every default phrase, in category order: the default of ``SmsConfig.urgent_phrases``.
DEFAULT_URGENT_PHRASE_LIST: Final[tuple[str, ...]] = tuple(
    phrase for phrases in DEFAULT_URGENT_PHRASES.values() for phrase in phrases
)

#: The crisis line, as the on-call alert and the automatic answer give it (US).
CRISIS_LINE: Final = (
    "988 Suicide & Crisis Lifeline: call or text 988 (24/7). In immediate danger: call 911."
)

#: Contractions and spoken forms, spelled out in replies and phrases alike (after
#: apostrophes are dropped: ``don't`` is ``dont``).
_SPELLED_OUT: Final[Mapping[str, tuple[str, ...]]] = {
    "dont": ("do", "not"),
    "doesnt": ("does", "not"),
    "didnt": ("did", "not"),
    "cant": ("can", "not"),
    "cannot": ("can", "not"),
    "wont": ("will", "not"),
    "isnt": ("is", "not"),
    "arent": ("are", "not"),
    "wasnt": ("was", "not"),
    "im": ("i", "am"),
    "ive": ("i", "have"),
    "hes": ("he", "is"),
    "shes": ("she", "is"),
    "theres": ("there", "is"),
    "someones": ("someone", "is"),
    "somebodys": ("somebody", "is"),
    "gonna": ("going", "to"),
    "wanna": ("want", "to"),
}


def urgent_words(text: str) -> tuple[str, ...]:
    """The words :func:`detect_urgent` compares: ``text`` normalised (case, accents and
    compatibility forms folded, apostrophes dropped, punctuation a space) and contractions
    spelled out (``"I don’t wanna"`` -> ``("i", "do", "not", "want", "to")``)."""
    words: list[str] = []
    for word in normalize_text(text).split():
        if word == "self" and words and words[-1] in _SELF_PREFIXES:
            words[-1] += "self"  # "kill my self", as texted, is "kill myself"
            continue
        words.extend(_SPELLED_OUT.get(word, (word,)))
    return tuple(words)


#: "my self", "him self"...: texted apart, read together.
_SELF_PREFIXES: Final = frozenset({"my", "your", "him", "her", "it", "one"})


_Index = dict[str, tuple[tuple[tuple[str, ...], str], ...]]


@lru_cache(maxsize=32)
def _compiled(phrases: tuple[str, ...]) -> _Index:
    """The phrases' words indexed by their first word, longest first (as configured)."""
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for phrase in phrases:
        words = urgent_words(phrase)
        if words:
            index.setdefault(words[0], []).append((words, phrase))
    return {
        first: tuple(sorted(entries, key=lambda e: -len(e[0]))) for first, entries in index.items()
    }


def detect_urgent(body: str, phrases: Sequence[str] = DEFAULT_URGENT_PHRASE_LIST) -> str | None:
    """The phrase of ``phrases`` that makes ``body`` urgent, as configured, or ``None``.

    The phrase found first reading the reply is returned (at one place, the longest:
    ``"going to hurt myself"`` rather than ``"going to hurt"``). Whole words only, after
    :func:`urgent_words` normalised both; negation is not understood (the module docstring
    says why that is accepted). An empty list makes no reply urgent.
    """
    index = _compiled(tuple(phrases))
    if not index:
        return None
    words = urgent_words(body)
    for i, word in enumerate(words):
        for phrase_words, phrase in index.get(word, ()):
            if words[i : i + len(phrase_words)] == phrase_words:
                return phrase
    return None


@lru_cache(maxsize=1)
def _categories() -> dict[tuple[str, ...], str]:
    return {
        urgent_words(phrase): category
        for category, phrases in DEFAULT_URGENT_PHRASES.items()
        for phrase in phrases
    }


def urgent_category(phrase: str) -> str:
    """The category of a matched phrase (:data:`SELF_HARM`, :data:`ABUSE`, :data:`DANGER`),
    or :data:`CONFIGURED` for a phrase a college added itself."""
    return _categories().get(urgent_words(phrase), CONFIGURED)


def check_phrases(phrases: Sequence[str]) -> list[str]:
    """``phrases`` cleaned for the configuration (trimmed, blanks and repeats left out), or
    ValueError naming a phrase that has no words to match (``"!!!"``) or is too long."""
    cleaned: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for raw in phrases:
        phrase = " ".join(raw.split())
        if not phrase:
            continue
        words = urgent_words(phrase)
        if not words:
            raise ValueError(f"urgent phrase {raw!r} has no words to match")
        if len(phrase) > 200:
            raise ValueError(f"urgent phrase {phrase[:40]!r}... is longer than 200 characters")
        if words not in seen:
            seen.add(words)
            cleaned.append(phrase)
    return cleaned


__all__ = [
    "ABUSE",
    "CONFIGURED",
    "CRISIS_LINE",
    "DANGER",
    "DEFAULT_URGENT_PHRASES",
    "DEFAULT_URGENT_PHRASE_LIST",
    "SELF_HARM",
    "check_phrases",
    "detect_urgent",
    "urgent_category",
    "urgent_words",
]
