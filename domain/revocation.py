"""Replies that read like a revocation of consent without being a carrier keyword.

:func:`detect_revocation` flags replies that read like a revocation in other words
  (``"please stop texting me"``, ``"wrong number"``) or like a mistyped opt-out keyword
  (``"stahp"``, ``"stopp"``). A flag pauses SMS to the number until an admin reviews it, so
  the rule is tuned against false positives on ordinary replies (``"I can't stop by
  today"``). Call it only when :func:`classify_keyword` said ``none``.

Revocation matching works on a normalised form of the reply: case and accents folded,
apostrophes dropped (``don't`` and ``dont`` are the same word), other punctuation treated as
a clause break, whitespace collapsed. A configured phrase matches when its words appear
consecutively, as whole words, inside one clause, and the two words before it in that clause
are not a negation (``"don't stop texting me"`` is not a revocation). Separately, a message
is a revocation when, leaving out politeness (``please``, ``por favor``, ``merci``...), it is

* a stop command (``"stop please"``, ``"Remove me, thanks"``) or opt-out keywords only
  (``"Alto por favor"``, ``"stop alto"``), or
* a near miss of an opt-out keyword (:func:`~domain.keywords.near_miss`): its letters,
  joined and with runs of a repeated letter squeezed to one, are one edit (a letter added,
  dropped, changed, or two neighbours swapped) from an opt-out keyword of four letters or
  more (``"stopp"``, ``"sotp"``, ``"st.op"``, ``"para"``, ``"Stoooop"``), or are a listed
  variant (:data:`~domain.keywords.OPT_OUT_VARIANTS`: ``"stahp"``, ``"basta"``...). The
  three-letter ``END`` has no near misses (``and``, ``bend`` and ``send`` are too close),
  and everyday words one edit from a keyword are listed as none
  (:data:`~domain.keywords.NOT_NEAR_MISSES`: ``"also"``, ``"quite"``...).

Carrier keywords themselves are :mod:`domain.keywords`; the two rules are kept apart because
they have different consequences (a keyword changes consent at once, a revocation-like reply
pauses texts until an admin reviews it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from domain.keywords import DEFAULT_KEYWORD_LANGUAGES, fold, near_miss, opt_out_words

#: Phrases that read like a revocation in other words. Configuration: replace or extend the
#: list (``SmsConfig``); entries are normalised like replies, so case, apostrophes and
#: punctuation in them do not matter. Kept specific on purpose ("remove me from this list",
#: not "remove me", which also opens "remove me from the waitlist").
DEFAULT_REVOCATION_PHRASES: tuple[str, ...] = (
    "stop texting",
    "stop txting",
    "stop messaging",
    "stop sending me",
    "stop sending texts",
    "stop sending messages",
    "stop sending these",
    "stop contacting",
    "stop the texts",
    "stop these texts",
    "stop the messages",
    "stop these messages",
    "stop all texts",
    "stop all messages",
    "stop text messages",
    "quit texting",
    "quit messaging",
    "dont text me",
    "do not text me",
    "dont text this number",
    "do not text this number",
    "dont message me",
    "do not message me",
    "dont contact me",
    "do not contact me",
    "never text me",
    "no more texts",
    "no more messages",
    "no more text messages",
    "remove me from this list",
    "remove me from your list",
    "remove me from the list",
    "remove me from these",
    "remove me from your texts",
    "remove me from your contacts",
    "remove my number",
    "remove this number",
    "take me off this list",
    "take me off your list",
    "take me off the list",
    "take me off these",
    "take me off your texts",
    "take my number off",
    "take this number off",
    "delete my number",
    "lose my number",
    "wrong number",
    "wrong person",
    "not my number",
    "isnt my number",
    "unsubscribe",
    "opt me out",
    "opt out of texts",
    "opt out of these",
    "opt out of text messages",
    "leave me alone",
)

#: Words that, within the two words before a phrase, turn it around ("don't stop texting").
_NEGATIONS = frozenset(
    {"dont", "not", "never", "didnt", "doesnt", "wont", "cant", "cannot", "shouldnt", "wouldnt"}
)
#: Whole-message stop commands: with only politeness around them they are a revocation.
_COMMANDS = frozenset(
    {
        ("stop",),
        ("stopall",),
        ("stop", "all"),
        ("unsubscribe",),
        ("optout",),
        ("opt", "out"),
        ("revoke",),
        ("remove", "me"),
        ("take", "me", "off"),
    }
)
_POLITENESS = frozenset(
    {
        # Spanish and French (accents folded, apostrophes dropped: "s'il vous plaît")
        "por",
        "favor",
        "porfa",
        "gracias",
        "ya",
        "ahora",
        "svp",
        "sil",
        "vous",
        "plait",
        "merci",
        "maintenant",
        "please",
        "pls",
        "plz",
        "now",
        "it",
        "thanks",
        "thank",
        "you",
        "thx",
        "ty",
        "ok",
        "okay",
        "just",
        "asap",
        "already",
        "seriously",
        "hi",
        "hello",
        "hey",
    }
)

_APOSTROPHES = dict.fromkeys(map(ord, "'’‘`´ʼ"), None)
_CLAUSE_BREAK = re.compile(r"[.!?;:,\n\r()\[\]\"“”]+")
_NOT_WORD = re.compile(r"\W+")


def normalize_text(text: str) -> str:
    """Fold case and accents, drop apostrophes, turn other punctuation into spaces, collapse
    spaces."""
    folded = fold(text).translate(_APOSTROPHES)
    return " ".join(_NOT_WORD.sub(" ", folded).replace("_", " ").split())


def _clauses(body: str) -> list[list[str]]:
    folded = fold(body).translate(_APOSTROPHES)
    clauses = []
    for clause in _CLAUSE_BREAK.split(folded):
        words = _NOT_WORD.sub(" ", clause).replace("_", " ").split()
        if words:
            clauses.append(words)
    return clauses


_Index = dict[str, tuple[tuple[tuple[str, ...], str], ...]]


@lru_cache(maxsize=32)
def _compiled(phrases: tuple[str, ...]) -> _Index:
    """Index the normalised phrases by their first word (as configured, in order)."""
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for phrase in phrases:
        words = tuple(normalize_text(phrase).split())
        if words:
            index.setdefault(words[0], []).append((words, phrase))
    return {first: tuple(entries) for first, entries in index.items()}


def detect_revocation(
    body: str,
    phrases: Sequence[str] = DEFAULT_REVOCATION_PHRASES,
    languages: Sequence[str] = DEFAULT_KEYWORD_LANGUAGES,
) -> str | None:
    """Return why ``body`` reads like a revocation, or ``None`` for an ordinary reply.

    The first configured phrase found reading the reply is returned, as configured. For a
    whole message that, politeness left out, is a stop command, opt-out keywords of
    ``languages`` only (``"stop please"``, ``"Alto por favor"``) or a near miss of one
    (:func:`~domain.keywords.near_miss`: ``"stahp"``, ``"stopp"``), the normalised message is
    returned.
    """
    index = _compiled(tuple(phrases))
    clauses = _clauses(body)
    for clause in clauses:
        for i, word in enumerate(clause):
            for words, phrase in index.get(word, ()):
                if tuple(clause[i : i + len(words)]) == words and _NEGATIONS.isdisjoint(
                    clause[max(i - 2, 0) : i]
                ):
                    return phrase
    core = tuple(w for clause in clauses for w in clause if w not in _POLITENESS)
    opt_out = opt_out_words(languages)
    if (
        core in _COMMANDS
        or (core and all(w in opt_out for w in core))
        or near_miss(core, languages)
    ):
        return " ".join(w for clause in clauses for w in clause)
    return None
