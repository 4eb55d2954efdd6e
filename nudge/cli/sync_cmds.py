"""``nudge init`` and ``nudge sync``: create the database, and sync contacts from the SIS."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail, prefect_server_configured, settings


def init(json_out: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """Create nudge's database, or upgrade it to the newest schema."""
    from models.db import upgrade_database

    url = settings().database_url
    try:
        before, after = upgrade_database(url)
    except Exception as exc:
        fail(f"could not initialise the database: {exc}", as_json=json_out)
    emit(
        {"revision_before": before, "revision": after, "upgraded": before != after},
        as_json=json_out,
        human=lambda d: (
            f"database ready at revision {d['revision']}"
            + (
                f" (upgraded from {d['revision_before']})"
                if d["upgraded"] and d["revision_before"]
                else " (created)"
                if d["upgraded"]
                else " (already up to date)"
            )
        ),
    )


def sync(
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="csv:PATH (folder with people.csv and phones.csv) or ethos:URL. "
            "Defaults to NUDGE_SIS_SOURCE.",
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", help="Encoding of CSV files that are not UTF-8 (e.g. cp1252)."),
    ] = None,
    engine: Annotated[
        bool | None,
        typer.Option(
            "--engine/--no-engine",
            help="Run through Prefect (tracked in the UI). Default: only when PREFECT_API_URL "
            "is set, so the command never waits for a temporary Prefect server.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Apply a sync the guards refuse (too many people deactivated, phone numbers "
            "removed, or students left without a number): only for a known mass change.",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Sync students, staff and phone numbers from the SIS (atomic: all or nothing)."""
    from adapters.sis.base import SourceError
    from domain.sync import SyncRefused

    conf = settings()
    chosen = source or conf.sis_source
    if not chosen:
        fail(
            "no source: pass --source csv:PATH|ethos:URL or set NUDGE_SIS_SOURCE", as_json=json_out
        )
    use_engine = prefect_server_configured() if engine is None else engine
    try:
        if use_engine:
            from flows.sis_sync import sis_sync

            stats = sis_sync(source=chosen, encoding=encoding, force=force)
        else:
            from flows.sis_sync import run_sync

            stats = run_sync(chosen, settings=conf, encoding=encoding, force=force)
    except SyncRefused as exc:
        fail(str(exc), as_json=json_out, code=3, refused=True)
    except SourceError as exc:
        fail(str(exc), as_json=json_out, code=2)
    emit(stats, as_json=json_out, human=_human_sync)


def _human_sync(d: dict[str, Any]) -> str:
    lines = [
        f"sync #{d['sync_run_id']} done",
        f"  people: {d['people_created']} created, {d['people_updated']} updated, "
        f"{d['people_unchanged']} unchanged, {d['people_deactivated']} deactivated",
        f"  phones: {d['phones_valid']} valid, {d['phones_invalid']} invalid "
        f"({d['phones_parsed']} parsed this run)",
        f"  students with an SMS number: {d['sms_eligible']}",
        f"  flagged: {d['type_mismatches']} landlines coded as mobile, "
        f"{d['shared_numbers']} numbers shared by several students",
        f"  quarantined rows: {d['rows_quarantined']} "
        f"(see `nudge sync-runs show {d['sync_run_id']}`)",
    ]
    if d.get("unknown_type_codes"):
        codes = ", ".join(f"{c}×{n}" for c, n in d["unknown_type_code_counts"].items())
        lines.append(f"  unknown type codes (mapped to other): {codes}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``init`` and ``sync`` to the main app."""
    app.command("init")(init)
    app.command("sync")(sync)
