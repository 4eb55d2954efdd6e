"""What every CLI command shares: JSON-or-human output, clean errors, settings and sessions.

Only the standard library and typer are imported at module level: ``nudge --help`` must
start in well under half a second, so anything heavy is imported inside the command.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from sqlmodel import Session

    from nudge.settings import Settings

JSON_HELP = "Print one JSON object on stdout instead of a human summary."


def group(help_text: str) -> typer.Typer:
    """A command group. Plain (non-rich) help: rich's import alone would cost ~0.4 s of the
    half second ``nudge --help`` may take."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


def emit(data: dict[str, Any], *, as_json: bool, human: Callable[[dict[str, Any]], str]) -> None:
    """Print ``data`` as one JSON object, or as the human summary ``human(data)``."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, sort_keys=True) + "\n")
    else:
        sys.stdout.write(human(data).rstrip("\n") + "\n")


def fail(message: str, *, as_json: bool, code: int = 1, **extra: Any) -> NoReturn:
    """Report an error (as ``{"error": ...}`` with ``--json``) and exit non-zero."""
    if as_json:
        sys.stdout.write(json.dumps({"error": message, **extra}, default=str) + "\n")
    else:
        sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


def settings() -> Settings:
    """The process settings (environment and ``.env``), read now rather than at import."""
    from nudge.settings import get_settings

    return get_settings()


@contextmanager
def session() -> Iterator[Session]:
    """A committed-on-success session on nudge's database."""
    from models.db import session_scope
    from nudge import wiring

    with session_scope(wiring.engine(settings())) as s:
        yield s


def actor() -> str:
    """Who ran the command, as audit trails record it: ``cli:<user>`` (``cli`` when the
    user name cannot be read, as in some containers)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "cli"


def masker(reveal: bool) -> Callable[[str], str]:
    """How phone numbers are shown: in full with ``--reveal``, else masked
    (``+1******0123``)."""
    from domain.masking import mask_phone

    return (lambda n: n) if reveal else mask_phone


def warn(message: str) -> None:
    """A warning for the person at the terminal (stderr, so ``--json`` stays one object)."""
    sys.stderr.write(f"warning: {message}\n")


def institution_zone(s: Session) -> str:
    """The institution's time zone (``SmsConfig.timezone``): every time a person reads is
    shown in it."""
    from models.config import load_config

    return load_config(session=s).timezone


def _aware(moment: datetime | str) -> datetime:
    from datetime import UTC

    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    # Stored times are UTC; a naive one can only be a UTC value that lost its zone.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def local_time(moment: datetime | str | None, zone: str, *, empty: str = "-") -> str:
    """``2026-11-27 14:05 EST``: a stored (UTC) time in the institution's zone, with the
    zone's abbreviation, for human output."""
    if moment is None or moment == "":
        return empty
    from zoneinfo import ZoneInfo

    return _aware(moment).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def local_iso(moment: datetime | str | None, zone: str) -> str | None:
    """ISO 8601 with the offset, in the institution's zone (``--json`` output)."""
    if moment is None or moment == "":
        return None
    from zoneinfo import ZoneInfo

    return _aware(moment).astimezone(ZoneInfo(zone)).isoformat()


def prefect_server_configured() -> bool:
    """True when a Prefect API is configured, so runs can be tracked without a temp server."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())
