"""``nudge sandbox twilio`` runs the Twilio emulator; ``nudge sandbox reply`` texts it.

Wire it with ``register(sandbox_app)``. Only typer is imported at module level, so that
``nudge --help`` stays fast: the emulator, httpx and the settings load inside the commands.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail, settings

DEFAULT_PORT = 8765


def register(app: typer.Typer) -> None:
    """Add the ``twilio`` and ``reply`` commands to the ``sandbox`` Typer app."""
    app.command("twilio")(twilio)
    app.command("reply")(reply)


def _parse_failures(values: list[str]) -> dict[str, int]:
    failures: dict[str, int] = {}
    for item in values:
        number, sep, code = item.partition("=")
        if not sep or not code.strip().isdigit():
            raise typer.BadParameter(f"expected NUMBER=CODE, got {item!r}", param_hint="--fail")
        failures[number.strip()] = int(code)
    return failures


def twilio(
    port: Annotated[
        int, typer.Option(help="Port to listen on; 0 picks a free one (printed at start).")
    ] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option(help="Interface to bind. Keep the loopback default unless needed.")
    ] = "127.0.0.1",
    state: Annotated[
        Path | None,
        typer.Option(help="SQLite file keeping messages and numbers across restarts."),
    ] = None,
    account_sid: Annotated[
        str | None,
        typer.Option(help="Accept only this account SID (default: any well-formed AC...)."),
    ] = None,
    auth_token: Annotated[
        str | None, typer.Option(help="Accept only this auth token (default: any).")
    ] = None,
    latency_ms: Annotated[
        float, typer.Option(help="Delay before every API response, in milliseconds.")
    ] = 0.0,
    share_429: Annotated[
        float, typer.Option(help="Share (0-1) of calls answered 429 Too Many Requests (20429).")
    ] = 0.0,
    share_5xx: Annotated[
        float, typer.Option(help="Share (0-1) of calls answered 500 or 503.")
    ] = 0.0,
    share_drop: Annotated[
        float,
        typer.Option(
            help="Share (0-1) of message creates stored, then dropped without a response."
        ),
    ] = 0.0,
    fault_scope: Annotated[
        str, typer.Option(help="Where 429/5xx apply: 'create' (message creates) or 'all'.")
    ] = "create",
    mps: Annotated[
        float | None,
        typer.Option(help="Per-account pace in segments/s; faster sends wait 'queued'."),
    ] = None,
    queue_delay_s: Annotated[
        float,
        typer.Option(
            help="A provider backlog: extra seconds every message waits in the queue. A "
            "message that would wait longer than its ValidityPeriod fails with 30036."
        ),
    ] = 0.0,
    status_delay_ms: Annotated[
        float, typer.Option(help="Time per step of queued -> sent -> delivered, in ms.")
    ] = 100.0,
    share_undelivered: Annotated[
        float, typer.Option(help="Share (0-1) of accepted messages that end undelivered.")
    ] = 0.0,
    undelivered_code: Annotated[
        int, typer.Option(help="Error code of the messages picked by --share-undelivered.")
    ] = 30003,
    fail: Annotated[
        list[str] | None,
        typer.Option(
            help="NUMBER=CODE: texts to NUMBER fail with CODE (2xxxx refused at create, "
            "3xxxx undelivered later). Repeatable."
        ),
    ] = None,
    exhausted_area_code: Annotated[
        list[str] | None,
        typer.Option(help="Area code with no numbers for sale (tests fallback). Repeatable."),
    ] = None,
    strict_numbers: Annotated[
        bool,
        typer.Option(help="Send only from numbers the account bought (else error 21606)."),
    ] = False,
    webhook_delay_s: Annotated[
        float,
        typer.Option(
            help="Seconds an inbound text stays 'receiving' (no date_sent) before Twilio "
            "calls the incoming webhook and it turns 'received'."
        ),
    ] = 0.0,
    inbound_lag_s: Annotated[
        float,
        typer.Option(
            help="Seconds after its creation before an inbound text shows in the Messages "
            "list (real Twilio: often 10-15 minutes, no promised bound)."
        ),
    ] = 0.0,
    help_text: Annotated[
        str | None, typer.Option(help="Auto-reply to HELP/INFO (default: Twilio's text).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the fault generator, for repeatable runs.")
    ] = None,
) -> None:
    """Run the local Twilio emulator until Ctrl-C; point nudge at it with the printed URL."""
    from pydantic import ValidationError

    from sandbox.twilio import EmulatorConfig, serve

    knobs: dict[str, Any] = {
        "account_sid": account_sid,
        "auth_token": auth_token,
        "latency_ms": latency_ms,
        "share_429": share_429,
        "share_5xx": share_5xx,
        "share_drop_after_accept": share_drop,
        "fault_scope": fault_scope,
        "mps": mps,
        "queue_delay_s": queue_delay_s,
        "status_delay_ms": status_delay_ms,
        "share_undelivered": share_undelivered,
        "undelivered_code": undelivered_code,
        "recipient_errors": _parse_failures(fail or []),
        "exhausted_area_codes": exhausted_area_code or [],
        "strict_numbers": strict_numbers,
        "inbound_webhook_delay_s": webhook_delay_s,
        "inbound_lag_s": inbound_lag_s,
        "seed": seed,
    }
    if help_text is not None:
        knobs["help_text"] = help_text
    try:
        config = EmulatorConfig(**knobs)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from exc

    def announce(base_url: str) -> None:
        typer.echo(f"Twilio emulator listening on {base_url} (Ctrl-C to stop)")
        typer.echo(f"  export NUDGE_TWILIO_BASE_URL={base_url}")
        if state is not None:
            typer.echo(f"  state kept in {state}")

    with contextlib.suppress(KeyboardInterrupt):
        serve(config, host=host, port=port, state_path=state, on_ready=announce)
    typer.echo("Twilio emulator stopped.")


def reply(
    from_: Annotated[
        str, typer.Option("--from", help="The phone that texts (E.164, e.g. +15551230001).")
    ],
    to: Annotated[
        str, typer.Option("--to", help="Our number it texts (E.164), e.g. a staff sender.")
    ],
    body: Annotated[str, typer.Option("--body", help="The text; STOP, START, HELP act.")],
    url: Annotated[
        str | None,
        typer.Option(help="Emulator base URL (default: NUDGE_TWILIO_BASE_URL)."),
    ] = None,
    account_sid: Annotated[
        str | None,
        typer.Option(help="Account the message belongs to, if the number is not bought."),
    ] = None,
    sent_ago: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="A late reply: sent this many seconds ago (date_sent back-dated), yet "
            "listed by Twilio only from now on.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Inject an inbound SMS into a running emulator, as if a phone had sent it."""
    import httpx

    from domain.masking import mask_phone

    base_url = url or settings().twilio_base_url
    if not base_url:
        fail("no emulator URL: pass --url or set NUDGE_TWILIO_BASE_URL", as_json=as_json, code=2)
    payload: dict[str, Any] = {"From": from_, "To": to, "Body": body}
    if account_sid:
        payload["AccountSid"] = account_sid
    if sent_ago is not None:
        payload["SentAgo"] = sent_ago
    try:
        response = httpx.post(f"{base_url.rstrip('/')}/sandbox/inbound", json=payload)
    except httpx.TransportError as exc:
        fail(f"no Twilio emulator answers at {base_url} ({exc})", as_json=as_json)
    if response.status_code != 201:
        fail(f"the emulator refused the message: {response.text}", as_json=as_json)
    result = response.json()

    def human(data: dict[str, Any]) -> str:
        lines = [f"Inbound {data['message']['sid']} from {mask_phone(from_)} to {mask_phone(to)}"]
        if sent_ago:
            lines.append(
                f"Sent {sent_ago:g} s ago ({data['message']['date_sent']}), listed from now"
            )
        if data["keyword"]:
            lines.append(f"Keyword: {data['keyword'].upper()}")
        if data["auto_reply"]:
            lines.append(f"Auto-reply: {data['auto_reply']['body']}")
        return "\n".join(lines)

    emit(result, as_json=as_json, human=human)
