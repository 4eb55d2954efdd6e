"""What an inbound SMS asks for: a carrier keyword, or a revocation in other words.

Two rules, kept apart because they have different consequences:

* :func:`classify_keyword` recognises the carrier keywords Twilio itself acts on (opt-out
  STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT; opt-in START YES UNSTOP; help
  HELP INFO). The keyword must be the whole message; case, surrounding whitespace and
  surrounding punctuation or symbols are ignored (``"Stop."``, ``" stop! "``), anything
  else is not a keyword (``"stop texting me"``). A keyword changes consent immediately.
* :func:`detect_revocation` flags replies that read like a revocation in other words
  (``"please stop texting me"``, ``"wrong number"``). A flag pauses SMS to the number until
  an admin reviews it, so the rule is tuned against false positives on ordinary replies
  (``"I can't stop by today"``). Call it only when :func:`classify_keyword` said ``none``.

Revocation matching works on a normalised form of the reply: case-folded, apostrophes
dropped (``don't`` and ``dont`` are the same word), other punctuation treated as a clause
break, whitespace collapsed. A configured phrase matches when its words appear
consecutively, as whole words, inside one clause, and the two words before it in that clause
are not a negation (``"don't stop texting me"`` is not a revocation). Separately, a message
that is only a stop command plus politeness (``"stop please"``, ``"Remove me, thanks"``) is
a revocation even though it is not a carrier keyword.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache


class Keyword(StrEnum):
    """The carrier keyword an inbound message is, if any."""

    STOP = "stop"
    START = "start"
    HELP = "help"
    NONE = "none"


OPT_OUT_KEYWORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN_KEYWORDS = frozenset({"start", "yes", "unstop"})
HELP_KEYWORDS = frozenset({"help", "info"})

_KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, Keyword.STOP),
    **dict.fromkeys(OPT_IN_KEYWORDS, Keyword.START),
    **dict.fromkeys(HELP_KEYWORDS, Keyword.HELP),
}
_LONGEST_KEYWORD = max(len(k) for k in _KEYWORDS)


def classify_keyword(body: str) -> Keyword:
    """Return the carrier keyword ``body`` is, or :attr:`Keyword.NONE`.

    The whole message must be the keyword, ignoring case and any surrounding characters
    that are not letters or digits (whitespace, punctuation, symbols, emoji).
    """
    start, end = 0, len(body)
    while start < end and not body[start].isalnum():
        start += 1
    while end > start and not body[end - 1].isalnum():
        end -= 1
    # Long messages cannot be a keyword: skip normalising them.
    if end - start > 2 * _LONGEST_KEYWORD:
        return Keyword.NONE
    word = unicodedata.normalize("NFKC", body[start:end]).casefold()
    return _KEYWORDS.get(word, Keyword.NONE)


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
    """Case-fold, drop apostrophes, turn other punctuation into spaces, collapse spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    return " ".join(_NOT_WORD.sub(" ", folded).replace("_", " ").split())


def _clauses(body: str) -> list[list[str]]:
    folded = unicodedata.normalize("NFKC", body).casefold().translate(_APOSTROPHES)
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


def detect_revocation(body: str, phrases: Sequence[str] = DEFAULT_REVOCATION_PHRASES) -> str | None:
    """Return the revocation phrase ``body`` contains, or ``None`` for an ordinary reply.

    The first phrase found reading the reply is returned, as configured; for a
    whole-message stop command with only politeness around it ("stop please"), the
    normalised message is returned.
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
    if core in _COMMANDS:
        return " ".join(w for clause in clauses for w in clause)
    return None
