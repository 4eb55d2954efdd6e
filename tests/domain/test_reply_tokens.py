"""Reply tokens: bound to one conversation and to the installation's key."""

from __future__ import annotations

from domain.reply_tokens import ReplyPair, make_token, read_token, reply_address, token_in


def test_tokens_are_bound_to_their_conversation_and_key() -> None:
    key = b"k" * 32
    token = make_token(key, ReplyPair(12, 345))
    assert read_token(key, token) == ReplyPair(12, 345)
    assert read_token(key, token.upper()) == ReplyPair(12, 345)  # mail systems lower-case
    assert read_token(b"other" * 8, token) is None
    assert read_token(key, token.replace("s345", "s346")) is None
    assert read_token(key, token[:-1]) is None
    assert reply_address("texts@college.edu", token) == f"texts+{token}@college.edu"
    assert token_in("texts@college.edu", [f"Tess <texts+{token}@College.EDU>"]) == token
    assert token_in("texts@college.edu", ["texts@college.edu", "other+x@college.edu"]) is None
