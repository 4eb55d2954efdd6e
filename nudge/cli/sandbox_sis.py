"""``nudge sandbox generate`` and ``nudge sandbox ethos``: a messy SIS extract and an Ethos API.

Only typer (and the shared CLI helpers) are imported at module level; the generator and the
server are imported when a command runs, so ``nudge --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail


def generate(
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder to write people.csv, phones.csv and manifest.json."),
    ] = Path("extract"),
    students: Annotated[
        int, typer.Option("--students", min=0, help="Number of students to generate.")
    ] = 1000,
    staff: Annotated[
        int, typer.Option("--staff", min=0, help="Number of staff (advisors, faculty, ...).")
    ] = 50,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed writes the same files.")
    ] = 1,
    malformed: Annotated[
        bool,
        typer.Option(
            "--malformed/--no-malformed",
            help="Plant a few malformed rows (ragged, blank ids, bad dates...) that the sync "
            "must quarantine.",
        ),
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Write a realistic, messy SIS extract (csv:DIR) for the demo, tests and benchmarks."""
    from sandbox.generate import generate as write_extract

    try:
        summary = write_extract(out, students=students, staff=staff, seed=seed, malformed=malformed)
    except OSError as exc:
        fail(f"could not write the extract to {out}: {exc}", as_json=json_out)
    emit(summary.to_dict(), as_json=json_out, human=_human_generate)


def _human_generate(d: dict[str, Any]) -> str:
    mess = d["mess"]
    share = d["students_with_sms_number"] / d["students"] if d["students"] else 0.0
    planted = {
        "free text": mess.get("quality_free_text", 0),
        "blank": mess.get("quality_blank", 0),
        "invalid": mess.get("quality_invalid", 0),
        "landline/toll-free coded as cell": mess.get("quality_landline_coded_as_cell", 0)
        + mess.get("quality_toll_free_coded_as_cell", 0),
        "extension in a cell slot": mess.get("quality_extension_in_cell", 0),
        "international": sum(v for k, v in mess.items() if k.startswith("international_")),
        "shared by siblings": mess.get("quality_shared_cell", 0)
        + mess.get("shared_home_number", 0)
        + mess.get("shared_parent_number", 0),
        "stale": mess.get("stale_row", 0),
        "unknown type code": mess.get("unknown_type_code", 0),
    }
    return "\n".join(
        [
            f"wrote csv:{d['out_dir']}",
            f"  {d['students']} students, {d['staff']} staff: {d['people_rows']} people rows, "
            f"{d['phone_rows']} phone rows ({d['phones_per_student']:.2f} per student)",
            f"  students with an SMS-capable cell number: {d['students_with_sms_number']} "
            f"({share:.1%})",
            "  planted phone mess: " + ", ".join(f"{n} {k}" for k, n in planted.items()),
            f"  malformed rows to be quarantined: {d['malformed_count']}",
            f"sync it with: nudge sync --source csv:{d['out_dir']}",
        ]
    )


def ethos(
    source_dir: Annotated[
        Path,
        typer.Option(
            "--from", help="Extract folder (people.csv, phones.csv) whose people to serve."
        ),
    ],
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0 = any free).")] = 8766,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="API key clients must present to /auth. Default: NUDGE_ETHOS_API_KEY, else "
            "the sandbox key 'sandbox-ethos-key'.",
        ),
    ] = None,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0, help="Delay added to every persons response.")
    ] = 0.0,
    share_429: Annotated[
        float,
        typer.Option("--share-429", min=0, max=1, help="Share of persons requests answered 429."),
    ] = 0.0,
    share_500: Annotated[
        float,
        typer.Option("--share-500", min=0, max=1, help="Share of persons requests answered 500."),
    ] = 0.0,
    token_ttl: Annotated[
        float, typer.Option("--token-ttl", min=0.001, help="Lifetime of issued JWTs, in seconds.")
    ] = 300.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the injected faults.")] = 0,
    page_size: Annotated[
        int, typer.Option("--max-page-size", min=1, help="Largest page served (limit is capped).")
    ] = 500,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Encoding of the extract if not UTF-8.")
    ] = None,
) -> None:
    """Serve an Ethos-style persons API (JWT auth, paging, injected faults) until Ctrl-C."""
    from nudge.cli.common import settings
    from sandbox.ethos import DEFAULT_API_KEY, EthosSandbox, EthosSandboxConfig, serve
    from sandbox.ethos.convert import ExtractError, persons_from_folder

    try:
        persons = persons_from_folder(source_dir, encoding=encoding)
    except (ExtractError, OSError) as exc:
        fail(str(exc), as_json=False)
    if api_key is None:
        configured = settings().ethos_api_key
        api_key = configured.get_secret_value() if configured else DEFAULT_API_KEY
    try:
        config = EthosSandboxConfig(
            api_key=api_key,
            token_ttl_s=token_ttl,
            latency_ms=latency_ms,
            share_429=share_429,
            share_500=share_500,
            seed=seed,
            max_page_size=page_size,
        )
    except ValueError as exc:
        fail(str(exc), as_json=False)
    sandbox = EthosSandbox(persons, config)

    def ready(url: str) -> None:
        key_hint = (
            f" (API key: {DEFAULT_API_KEY})" if api_key == DEFAULT_API_KEY else ""
        )  # the sandbox's public default key only; a real-looking key is never printed
        typer.echo(f"sandbox Ethos API serving {len(persons)} persons at {url}{key_hint}")
        typer.echo(f"sync it with: nudge sync --source ethos:{url}   (Ctrl-C to stop)")

    try:
        serve(sandbox, host=host, port=port, on_ready=ready)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", as_json=False)


def register(app: typer.Typer) -> None:
    """Add ``generate`` and ``ethos`` to the ``sandbox`` command group."""
    app.command("generate")(generate)
    app.command("ethos")(ethos)
