"""What an inbound SMS asks for: a carrier keyword, or a revocation in other words.

Two rules, kept apart because they have different consequences:

* :func:`classify_keyword` recognises a carrier keyword (opt-out, opt-in or help) in the
  languages the college configures (:data:`KEYWORDS`; English is always on, because Twilio
  acts on the English keywords whatever nudge does). A keyword changes consent immediately,
  so the rule is strict: the keyword must be the whole message. Tolerated, after folding
  case and accents (``ARRÊT`` is ``arret``): surrounding whitespace, punctuation, symbols
  and emoji (``"Stop."``, ``" stop! "``, ``"Stop 🛑"``); the keyword spelled out letter by
  letter with spaces or punctuation between (``"S T O P"``, ``"s.t.o.p"``, ``"S-T-O-P"``);
  the same keyword repeated (``"STOP STOP"``, ``"stop, stop!!"``). Anything else is not a
  keyword (``"stop texting me"``, ``"stopp"``, ``"st.op"``).
* :func:`detect_revocation` flags replies that read like a revocation in other words
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
* a near miss of an opt-out keyword (:func:`near_miss`): its letters, joined and with runs
  of a repeated letter squeezed to one, are one edit (a letter added, dropped, changed, or
  two neighbours swapped) from an opt-out keyword of four letters or more (``"stopp"``,
  ``"sotp"``, ``"st.op"``, ``"para"``, ``"Stoooop"``), or are a listed variant
  (:data:`OPT_OUT_VARIANTS`: ``"stahp"``, ``"basta"``...). The three-letter ``END`` has no
  near misses (``and``, ``bend`` and ``send`` are too close), and everyday words one edit
  from a keyword are listed as none (:data:`NOT_NEAR_MISSES`: ``"also"``, ``"quite"``...).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from functools import lru_cache


class Keyword(StrEnum):
    """The carrier keyword an inbound message is, if any."""

    STOP = "stop"
    START = "start"
    HELP = "help"
    NONE = "none"


#: Carrier keywords per language and kind, as people write them (matching folds case and
#: accents, so ``ARRÊT`` also matches ``arret`` and ``Arret``). Sources:
#:
#: * en: Twilio's default keywords ("Twilio support for opt-out keywords (SMS STOP
#:   filtering)", help.twilio.com); Twilio itself blocks sends after these.
#: * es: ALTO and AYUDA are the keywords US carriers require of Spanish-language short
#:   codes (Twilio, "What are the requirements for a Spanish-language short code?").
#:   PARAR, CANCELAR, DETENER, BAJA and DESUSCRIBIR are the Spanish opt-out words
#:   messaging platforms' keyword lists carry (BAJA and CANCELAR also in the MMA's Spanish
#:   guidance); COMENZAR and INICIAR are their opt-in counterparts. Not "SÍ": it answers
#:   too many staff questions to re-subscribe anyone.
#: * fr: ARRET and AIDE are the French keywords Canadian carriers make mandatory (CWTA
#:   short-code guidelines, via Twilio "Industry standards for mandatory keyword responses
#:   required in Canada"); ARRET is also on AWS's US/Canada opt-out list. ARRÊTE, ARRÊTER,
#:   ANNULER, DÉSABONNER and DÉSINSCRIRE are the usual French words for the same; COMMENCER
#:   and RÉABONNER the opt-in counterparts.
#:
#: Twilio blocks sends itself only after the English opt-out keywords (and lifts its block
#: only on the English opt-in ones); for the others nudge's own consent record is what
#: stops the next text. A word may appear in several languages, but always for one kind.
KEYWORDS: Mapping[str, Mapping[Keyword, tuple[str, ...]]] = {
    "en": {
        Keyword.STOP: (
            "STOP",
            "STOPALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPTOUT",
        ),
        Keyword.START: ("START", "YES", "UNSTOP"),
        Keyword.HELP: ("HELP", "INFO"),
    },
    "es": {
        Keyword.STOP: ("PARAR", "ALTO", "CANCELAR", "DETENER", "BAJA", "DESUSCRIBIR"),
        Keyword.START: ("COMENZAR", "INICIAR"),
        Keyword.HELP: ("AYUDA",),
    },
    "fr": {
        Keyword.STOP: ("ARRÊT", "ARRÊTE", "ARRÊTER", "ANNULER", "DÉSABONNER", "DÉSINSCRIRE"),
        Keyword.START: ("COMMENCER", "RÉABONNER"),
        Keyword.HELP: ("AIDE",),
    },
}

#: Spellings of an opt-out that are no keyword and no single-edit near miss of one, but
#: read as "stop": flagged for review (never opted out), per language like the keywords.
OPT_OUT_VARIANTS: Mapping[str, tuple[str, ...]] = {
    "en": ("STAHP", "STAWP", "STOPIT"),
    "es": ("PARE", "BASTA"),
    "fr": ("CESSEZ", "STOPPEZ"),
}

#: Everyday words one edit from an opt-out keyword: never near misses (``"Also"`` is one
#: letter from ``ALTO``, ``"Quite"`` from ``QUIT``). Folded like replies.
NOT_NEAR_MISSES: frozenset[str] = frozenset(
    {"also", "auto", "alta", "quite", "quiet", "quiz", "suit", "step", "shop"}
)

#: Languages whose keywords are read unless configured otherwise (``keyword_languages``).
DEFAULT_KEYWORD_LANGUAGES: tuple[str, ...] = ("en", "es", "fr")
#: Always part of the configured languages: Twilio acts on these keywords regardless.
REQUIRED_LANGUAGE = "en"

#: Longer messages are never a keyword (one SMS segment; a repeated keyword fits easily).
_MAX_KEYWORD_MESSAGE = 160
#: Near misses are looked for only near keywords this long ("end" has too many neighbours).
_MIN_NEAR_MISS_KEYWORD = 4
_WORD = re.compile(r"[^\W_]+")
_LETTER_RUN = re.compile(r"(.)\1+")


def check_languages(languages: Iterable[str]) -> list[str]:
    """Return ``languages`` cleaned (trimmed, lower case, no repeats), or raise ValueError.

    The error names the allowed languages; English may not be left out.
    """
    cleaned: list[str] = []
    for language in languages:
        code = language.strip().lower()
        if code not in KEYWORDS:
            raise ValueError(
                f"unknown keyword language {language!r}; allowed: {', '.join(KEYWORDS)}"
            )
        if code not in cleaned:
            cleaned.append(code)
    if REQUIRED_LANGUAGE not in cleaned:
        raise ValueError(
            f"{REQUIRED_LANGUAGE} cannot be left out (Twilio acts on the English keywords "
            f"whatever nudge does); allowed: {', '.join(KEYWORDS)}"
        )
    return cleaned


def fold(text: str) -> str:
    """Compatibility forms, case and accents folded: ``"ＡRRÊT"`` -> ``"arret"``."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _squeeze(word: str) -> str:
    """Runs of one letter squeezed to one: ``"stooopp"`` -> ``"stop"``."""
    return _LETTER_RUN.sub(r"\1", word)


def _osa_distance_at_most_one(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` with at most one insertion, deletion, substitution, or
    swap of two neighbouring letters."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]


class _Table:
    """The keywords of some languages, folded, ready for matching."""

    def __init__(self, languages: tuple[str, ...]) -> None:
        self.keywords: dict[str, Keyword] = {}
        for language in languages:
            for kind, words in KEYWORDS[language].items():
                for word in words:
                    folded = fold(word)
                    known = self.keywords.setdefault(folded, kind)
                    if known is not kind:
                        raise ValueError(f"keyword {word!r} is both {known} and {kind}")
        self.opt_out = frozenset(w for w, kind in self.keywords.items() if kind is Keyword.STOP)
        self.near = tuple(
            sorted({_squeeze(w) for w in self.opt_out if len(w) >= _MIN_NEAR_MISS_KEYWORD})
        )
        self.variants = frozenset(
            _squeeze(fold(v)) for language in languages for v in OPT_OUT_VARIANTS[language]
        )
        self.longest = max(len(w) for w in (*self.near, *self.variants)) + 1


@lru_cache(maxsize=16)
def _table(languages: tuple[str, ...]) -> _Table:
    return _Table(tuple(check_languages(languages)))


def classify_keyword(body: str, languages: Sequence[str] = DEFAULT_KEYWORD_LANGUAGES) -> Keyword:
    """Return the carrier keyword ``body`` is in one of ``languages``, or ``Keyword.NONE``.

    The whole message must be the keyword, ignoring case, accents and any surrounding
    characters that are not letters or digits (whitespace, punctuation, symbols, emoji);
    a keyword spelled out letter by letter (``"S T O P"``) or repeated (``"STOP STOP"``)
    counts. ``ValueError`` for an unknown language.
    """
    table = _table(tuple(languages))
    if len(body) > _MAX_KEYWORD_MESSAGE:
        return Keyword.NONE
    words = _WORD.findall(fold(body))
    if len(words) > 1 and all(len(w) == 1 for w in words):
        words = ["".join(words)]  # spelled out: "S T O P", "s.t.o.p"
    if not words or any(w != words[0] for w in words):
        return Keyword.NONE
    return table.keywords.get(words[0], Keyword.NONE)


def near_miss(words: Sequence[str], languages: Sequence[str] = DEFAULT_KEYWORD_LANGUAGES) -> bool:
    """Whether ``words`` (a whole message, normalised) read like a mistyped opt-out keyword.

    The words are joined (``"st op"`` is ``"stop"``), or taken once when they repeat one
    word; runs of a repeated letter are squeezed to one (``"stoopp"`` is ``"stop"``). A
    candidate is a near miss when it is a listed variant (:data:`OPT_OUT_VARIANTS`) or one
    edit from an opt-out keyword of four letters or more, squeezed the same way.
    """
    table = _table(tuple(languages))
    if not words:
        return False
    forms = {"".join(words)}
    if all(w == words[0] for w in words):
        forms.add(words[0])
    for form in forms:
        candidate = _squeeze(fold(form))
        if len(candidate) < _MIN_NEAR_MISS_KEYWORD - 1 or len(candidate) > table.longest:
            continue
        if candidate in NOT_NEAR_MISSES:
            continue
        if candidate in table.variants or candidate in table.opt_out:
            return True
        if any(_osa_distance_at_most_one(candidate, k) for k in table.near):
            return True
    return False


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
    (:func:`near_miss`: ``"stahp"``, ``"stopp"``), the normalised message is returned.
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
    opt_out = _table(tuple(languages)).opt_out
    if (
        core in _COMMANDS
        or (core and all(w in opt_out for w in core))
        or near_miss(core, languages)
    ):
        return " ".join(w for clause in clauses for w in clause)
    return None
