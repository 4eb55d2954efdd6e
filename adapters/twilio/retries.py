"""Bounded retries of Twilio calls: :class:`RetryPolicy` and the loop every call runs in.

Exponential backoff with jitter (tenacity); the SDK itself never retries. Which failures
are retried is the caller's choice of exception class (see :mod:`adapters.twilio.errors`):
``send()`` retries :class:`~adapters.twilio.errors.RetriableError` only, idempotent reads
every :class:`~adapters.twilio.errors.ProviderUnavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from adapters.twilio.errors import GatewayError

logger = logging.getLogger("nudge.twilio")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter: attempt n waits ~base*2^(n-1), at most max."""

    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0


async def with_retries(
    attempt: Callable[[int], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retry_on: type[GatewayError],
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """Run ``attempt(1)``; while it raises ``retry_on``, back off and try again.

    Gives up after ``policy.max_retries`` retries by raising the last failure. The first
    attempt runs outside tenacity: building and driving a retry loop costs ~0.2 ms, which
    matters at a thousand sends per second and buys nothing on success.
    """
    try:
        return await attempt(1)
    except retry_on as failure:
        first = failure
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        # Full exponential step, capped, plus up to one base step of jitter.
        wait=wait_exponential(multiplier=policy.backoff_base_s, max=policy.backoff_max_s)
        + wait_random(0, policy.backoff_base_s),
        retry=retry_if_exception_type(retry_on),
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )
    async for retry in retrying:
        with retry:
            number = retry.retry_state.attempt_number
            if number == 1:
                raise first  # replay the failed fast attempt so tenacity backs off
            return await attempt(number)
    raise RuntimeError("unreachable: tenacity either returns or raises")


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    code = getattr(exc, "code", None) or getattr(exc, "http_status", None)
    logger.warning("twilio call failed (%s), attempt %d; retrying", code, state.attempt_number)
