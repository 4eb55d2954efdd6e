"""A local Ethos-style Integration API serving ``persons``, with knobs for faults.

Endpoints (as Ellucian Ethos Integration exposes them)::

    POST /auth                  Authorization: Bearer <API key>  → 200, JWT as text/plain
    GET  /api/persons           Authorization: Bearer <JWT>, ?offset=&limit=
                                → 200, JSON array, x-total-count, x-max-page-size
    GET  /api/persons/{guid}    → 200 one person, or 404
    GET  /health                → 200 "ok" (no auth)

A missing, wrong or expired JWT gets ``401``; the token lifetime is a knob (seconds, may be
fractional) and the clock is injectable, so tests can expire tokens mid-read without
sleeping. ``limit`` is capped at ``max_page_size`` as Ethos does.

Faults, on ``/api/persons`` only: first the statuses listed in ``faults`` (one per request,
in order), then ``429`` with probability ``share_429`` and ``500`` with ``share_500``, drawn
from a generator seeded with ``seed`` (so a run is reproducible); ``429`` carries
``Retry-After: retry_after_s``. ``latency_ms`` delays every persons response.
:attr:`EthosSandbox.stats` counts what was served, and :attr:`EthosSandbox.before_page` is a
hook called with each page's offset before it is served (tests use it to change the data
mid-read).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import random
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

MEDIA_TYPE = "application/vnd.hedtech.integration.v12+json"
DEFAULT_API_KEY = "sandbox-ethos-key"


@dataclass(slots=True)
class EthosSandboxConfig:
    """Knobs of the sandbox Ethos API (all may be changed while it runs)."""

    api_key: str = DEFAULT_API_KEY
    token_ttl_s: float = 300.0
    latency_ms: float = 0.0
    share_429: float = 0.0
    share_500: float = 0.0
    seed: int = 0
    retry_after_s: float | None = 1.0
    max_page_size: int = 500
    #: statuses served, in order, to the first persons requests (e.g. ``(429, 500)``)
    faults: Sequence[int] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0 <= self.share_429 <= 1 or not 0 <= self.share_500 <= 1:
            raise ValueError("share_429 and share_500 must be between 0 and 1")
        if self.share_429 + self.share_500 > 1:
            raise ValueError("share_429 + share_500 must not exceed 1")
        if self.max_page_size < 1 or self.token_ttl_s <= 0 or self.latency_ms < 0:
            raise ValueError("max_page_size and token_ttl_s must be positive, latency_ms >= 0")


def _error(status: int, code: str, message: str) -> JSONResponse:
    """An Ethos-style error body."""
    return JSONResponse(
        {"errors": [{"code": code, "description": message, "message": message}]},
        status_code=status,
    )


class EthosSandbox:
    """The state of one sandbox Ethos API (persons, knobs, counters) and its ASGI app."""

    def __init__(
        self,
        persons: Sequence[dict[str, Any]] = (),
        config: EthosSandboxConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Serve ``persons`` (Ethos records; see ``sandbox.ethos.convert``) with ``config``."""
        self.persons: list[dict[str, Any]] = list(persons)
        self.config = config or EthosSandboxConfig()
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self.before_page: Callable[[int], None] | None = None
        self._secret = secrets.token_bytes(32)
        self._rng = random.Random(self.config.seed)
        self._faults = list(self.config.faults)
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/auth", self._auth, methods=["POST"]),
                Route("/api/persons", self._persons, methods=["GET"]),
                Route("/api/persons/{guid}", self._person, methods=["GET"]),
                Route("/health", self._health, methods=["GET"]),
            ]
        )

    def configure(self, **knobs: Any) -> None:
        """Change knobs at run time (re-seeds the fault generator, resets scripted faults)."""
        config = replace(self.config, **knobs)
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self._faults = list(config.faults)

    def issue_token(self) -> str:
        """A JWT valid for ``token_ttl_s`` from now (by the sandbox clock)."""
        now = self.clock()
        claims = {
            "iss": "nudge-ethos-sandbox",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + self.config.token_ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    # --- endpoints ------------------------------------------------------------------------
    async def _health(self, _request: Request) -> Response:
        return PlainTextResponse("ok")

    async def _auth(self, request: Request) -> Response:
        self.stats["auth_requests"] += 1
        presented = _bearer(request)
        if presented is None or not hmac.compare_digest(
            presented.encode(), self.config.api_key.encode()
        ):
            self.stats["auth_refused"] += 1
            return _error(401, "Unauthorized", "invalid API key")
        self.stats["tokens_issued"] += 1
        return PlainTextResponse(self.issue_token())

    def _check_token(self, request: Request) -> Response | None:
        token = _bearer(request)
        if token is None:
            return _error(401, "Unauthorized", "missing bearer token")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError:
            self.stats["bad_token"] += 1
            return _error(401, "Unauthorized", "invalid token")
        # Checked here rather than by PyJWT: lifetimes may be fractional and the clock fake.
        if float(claims.get("exp", 0)) <= self.clock():
            self.stats["expired_token"] += 1
            return _error(401, "Unauthorized", "token expired")
        return None

    def _fault(self) -> Response | None:
        with self._lock:
            status = self._faults.pop(0) if self._faults else None
            if status is None:
                draw = self._rng.random()
                if draw < self.config.share_429:
                    status = 429
                elif draw < self.config.share_429 + self.config.share_500:
                    status = 500
        if status is None:
            return None
        self.stats[f"served_{status}"] += 1
        response = _error(status, "Fault", f"sandbox fault {status}")
        if status == 429 and self.config.retry_after_s is not None:
            response.headers["Retry-After"] = f"{self.config.retry_after_s:g}"
        return response

    async def _persons(self, request: Request) -> Response:
        self.stats["persons_requests"] += 1
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        fault = self._fault()
        if fault is not None:
            return fault
        refused = self._check_token(request)
        if refused is not None:
            return refused
        try:
            offset = int(request.query_params.get("offset", "0"))
            limit = int(request.query_params.get("limit", str(self.config.max_page_size)))
        except ValueError:
            return _error(400, "BadRequest", "offset and limit must be integers")
        if offset < 0 or limit < 1:
            return _error(400, "BadRequest", "offset must be >= 0 and limit >= 1")
        if self.before_page is not None:
            self.before_page(offset)
        limit = min(limit, self.config.max_page_size)
        page = self.persons[offset : offset + limit]
        self.stats["pages_served"] += 1
        return Response(
            _json(page),
            media_type=MEDIA_TYPE,
            headers={
                "x-total-count": str(len(self.persons)),
                "x-max-page-size": str(self.config.max_page_size),
                "x-media-type": MEDIA_TYPE,
            },
        )

    async def _person(self, request: Request) -> Response:
        refused = self._check_token(request)
        if refused is not None:
            return refused
        guid = request.path_params["guid"]
        for person in self.persons:
            if person.get("id") == guid:
                return JSONResponse(person, media_type=MEDIA_TYPE)
        return _error(404, "NotFound", f"no person with id {guid}")


def _json(value: Any) -> bytes:
    """Compact UTF-8 JSON; escaped ASCII when the data holds text UTF-8 cannot carry (a lone
    surrogate: valid JSON as ``\\udXXX``, and something a real SIS may send)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def create_app(
    persons: Sequence[dict[str, Any]] = (), config: EthosSandboxConfig | None = None
) -> Starlette:
    """The ASGI app of a new :class:`EthosSandbox` (for callers that need only the app)."""
    return EthosSandbox(persons, config).app
