"""Reply tokens: the unguessable part of a Reply-To address that says which conversation an
email answer belongs to.

Every staff notification and fallback email carries ``Reply-To: texts+<token>@college.edu``
(plus-addressing on the college's reply mailbox). The token names the staff member and the
student (their person ids) and carries an HMAC-SHA256 of both under the installation's key,
cut to 80 bits: without the key, a token for another pair cannot be made, and a changed
digit fails the check. Tokens are lower-case (some mail systems lower-case local parts).

Pure functions; the key is handed in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from email.utils import getaddresses

#: Hex digits of the HMAC kept in a token (80 bits).
MAC_HEX = 20
_TOKEN = re.compile(r"c(\d{1,12})s(\d{1,12})x([0-9a-f]{" + str(MAC_HEX) + "})")


@dataclass(frozen=True, slots=True)
class ReplyPair:
    """The conversation a token names: a staff member and a student (person ids)."""

    staff_person_id: int
    student_person_id: int


def _mac(key: bytes, pair: ReplyPair) -> str:
    message = f"nudge-reply:{pair.staff_person_id}:{pair.student_person_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:MAC_HEX]


def make_token(key: bytes, pair: ReplyPair) -> str:
    """The token of the conversation ``pair``, e.g. ``c12s3456x0f3a…`` (29–45 characters)."""
    return f"c{pair.staff_person_id}s{pair.student_person_id}x{_mac(key, pair)}"


def read_token(key: bytes, token: str) -> ReplyPair | None:
    """The conversation ``token`` names, or None when it is malformed or its HMAC does not
    match (tampered with, or made with another key)."""
    match = _TOKEN.fullmatch(token.strip().lower())
    if match is None:
        return None
    pair = ReplyPair(int(match.group(1)), int(match.group(2)))
    if not hmac.compare_digest(_mac(key, pair), match.group(3)):
        return None
    return pair


def reply_address(base: str, token: str) -> str:
    """``texts@college.edu`` + token → ``texts+<token>@college.edu``."""
    local, at, domain = base.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"reply address {base!r} is not an address (NUDGE_REPLY_ADDRESS)")
    return f"{local}+{token}@{domain}"


def tokens_in(base: str, addresses: list[str]) -> list[str]:
    """Every distinct token (lower-cased) that ``addresses`` carry on ``base``, in order."""
    found: list[str] = []
    for _name, addr in getaddresses(addresses):
        token = token_in(base, [addr])
        if token is not None and token.lower() not in found:
            found.append(token.lower())
    return found


def token_in(base: str, addresses: list[str]) -> str | None:
    """The token of the first of ``addresses`` (header values such as To, Cc, Delivered-To)
    that is ``base`` plus a tag, or None when none is. The tag is returned as written; an
    address of ``base`` without a tag, or of another mailbox, carries no token."""
    local, _, domain = base.strip().lower().rpartition("@")
    for _name, addr in getaddresses(addresses):
        a_local, at, a_domain = addr.strip().lower().rpartition("@")
        if not at or a_domain != domain:
            continue
        head, plus, tag = a_local.partition("+")
        if plus and head == local and tag:
            return tag
    return None


__all__ = [
    "MAC_HEX",
    "ReplyPair",
    "make_token",
    "read_token",
    "reply_address",
    "token_in",
    "tokens_in",
]
