"""What the ``ethos:URL`` source is told: its :class:`EthosConfig` and :class:`RetryPolicy`.

Kept apart from the source itself so that building a config (``nudge.wiring`` does, from
the ``NUDGE_ETHOS_*`` settings) does not import the HTTP client.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts per request and the backoff between them (seconds)."""

    max_attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0


@dataclass(frozen=True, slots=True)
class EthosConfig:
    """What the Ethos source needs to know, and nothing else (no settings object).

    ``api_key`` is exchanged for a JWT (the source refuses to start without one);
    ``id_credential`` is the ``credentials[].type`` whose value is the SIS person id;
    ``page_size`` the ``limit`` asked per page (the server may cap it); ``timeout_s`` the
    HTTP timeout per request; ``retry`` the bounded retries of 429/5xx/connection errors.
    """

    api_key: SecretStr | None = field(default=None, repr=False)
    id_credential: str = "bannerId"
    page_size: int = 500
    timeout_s: float = 30.0
    retry: RetryPolicy = RetryPolicy()

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if self.retry.max_attempts < 1:
            raise ValueError("retry.max_attempts must be at least 1")
        if not self.id_credential.strip():
            raise ValueError("id_credential must not be blank")


__all__ = ["EthosConfig", "RetryPolicy"]
