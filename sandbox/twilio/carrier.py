"""What the carrier and Twilio's opt-out handling do to a text: keywords, segments, replies.

The emulator carries its own copy of these rules on purpose: it stands for Twilio, so it
must not share code with the nudge rules it is used to check.

Keywords match the whole message, case-insensitively, ignoring surrounding whitespace and
punctuation ("Stop." and " stop! " match; "please stop" does not).
"""

from __future__ import annotations

import math
import unicodedata
from typing import Literal

Keyword = Literal["stop", "start", "help"]

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

STOP_REPLY = (
    "You have successfully been unsubscribed. You will not receive any more messages from "
    "this number. Reply START to re-subscribe."
)
START_REPLY = (
    "You have successfully been re-subscribed to messages from this number. Reply HELP for "
    "help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
_GSM7_ALL = _GSM7_BASIC | _GSM7_EXTENSION


def _is_trimmable(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")


def normalize_keyword_text(body: str) -> str:
    """Trim surrounding whitespace and punctuation and upper-case the rest."""
    start, end = 0, len(body)
    while start < end and _is_trimmable(body[start]):
        start += 1
    while end > start and _is_trimmable(body[end - 1]):
        end -= 1
    return body[start:end].upper()


def match_keyword(body: str) -> Keyword | None:
    """Return which carrier keyword family the whole message is, if any."""
    word = normalize_keyword_text(body)
    if word in OPT_OUT_WORDS:
        return "stop"
    if word in OPT_IN_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def count_segments(body: str) -> int:
    """Number of SMS segments: GSM-7 160/153 septets, otherwise UCS-2 70/67 code units."""
    chars = frozenset(body)
    if chars <= _GSM7_ALL:
        septets = len(body) + sum(body.count(ch) for ch in chars & _GSM7_EXTENSION)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)
