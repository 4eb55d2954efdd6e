"""Carrier keywords: what an inbound SMS asks for when it is STOP, START or HELP.

* :func:`classify_keyword` recognises a carrier keyword (opt-out, opt-in or help) in the
  languages the college configures (:data:`KEYWORDS`; English is always on, because Twilio
  acts on the English keywords whatever nudge does). A keyword changes consent immediately,
  so the rule is strict: the keyword must be the whole message. Tolerated, after folding
  case and accents (``ARRÊT`` is ``arret``): surrounding whitespace, punctuation, symbols
  and emoji (``"Stop."``, ``" stop! "``, ``"Stop 🛑"``); the keyword spelled out letter by
  letter with spaces or punctuation between (``"S T O P"``, ``"s.t.o.p"``, ``"S-T-O-P"``);
  the same keyword repeated (``"STOP STOP"``, ``"stop, stop!!"``). Anything else is not a
  keyword (``"stop texting me"``, ``"stopp"``, ``"st.op"``).

:func:`detect_revocation` (:mod:`domain.revocation`) is the other rule: replies that read
like a revocation in other words, or like a mistyped opt-out keyword.
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


def opt_out_words(languages: Sequence[str] = DEFAULT_KEYWORD_LANGUAGES) -> frozenset[str]:
    """The folded opt-out keywords of ``languages`` (English always included)."""
    return frozenset(_table(tuple(languages)).opt_out)
