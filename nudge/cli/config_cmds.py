"""The ``config`` group: show or change the SMS configuration."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail, group, session, warn

config_app = group("Show or change the SMS configuration.")

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


@config_app.command("show")
def config_show(json_out: JsonOpt = False) -> None:
    """Show every configuration key and its value."""
    from models.config import load_config

    with session() as s:
        data = load_config(session=s).model_dump(mode="json")
    emit(data, as_json=json_out, human=_human_config)


def _human_config(d: dict[str, Any]) -> str:
    lines = []
    for key, value in d.items():
        if key == "type_code_map":
            value = ",".join(f"{c}={k}" for c, k in sorted(value.items()))
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        lines.append(f"{key:<26} {value}")
    return "\n".join(lines)


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="Configuration key (see `nudge config show`).")],
    value: Annotated[str, typer.Argument(help="New value, e.g. 08:00-21:00, true, 5000.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Set permitted_roles even if nobody holds one of them yet (warns instead).",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Change one configuration key; a bad key or value is refused with what is allowed.

    ``permitted_roles`` naming a role no active staff member holds is refused (nobody
    could text with it): grant or define the role first, or pass --force.
    """
    from domain.config import ConfigError, apply_setting
    from models.config import load_config, save_config

    warnings: list[str] = []
    with session() as s:
        try:
            updated = apply_setting(load_config(session=s), key, value)
        except ConfigError as exc:
            fail(str(exc), as_json=json_out, code=2)
        if key == "permitted_roles":
            problem = _unheld_roles(s, updated.permitted_roles)
            if problem and not force:
                fail(f"{problem[0]}: {problem[1]}", as_json=json_out, code=2)
            if problem:
                warnings.append(problem[0])
                warn(problem[0])
        save_config(updated, session=s, actor="cli")
        shown = updated.model_dump(mode="json")[key]
    data: dict[str, Any] = {"key": key, "value": shown}
    if warnings:
        data["warnings"] = warnings
    emit(data, as_json=json_out, human=lambda d: f"{key} = {_shown(d['value'])}")


def _shown(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _unheld_roles(s: Any, roles: list[str]) -> tuple[str, str] | None:
    """What is wrong with ``roles`` as the permitted roles, and the remedy (None: every
    one of them is held by an active staff member)."""
    from models.roles import role_census

    force = "pass --force to set it anyway"
    if not roles:
        return "permitted_roles is empty, so nobody could start a campaign", force
    census = role_census(session=s)
    unheld = [r for r in roles if not census.held(r)]
    if not unheld:
        return None
    named = []
    for role in unheld:
        near = [n for n in census.closest(role) if census.held(n)]
        named.append(f"{role!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    so = "nobody could start a campaign" if len(unheld) == len(roles) else "it lets nobody text"
    return (
        f"no active staff member holds {', '.join(named)}, so {so}",
        "grant it first (`nudge roles grant STAFF ROLE --create` or `nudge roles define`), "
        f"or {force}",
    )


def register(app: typer.Typer) -> None:
    """Add the ``config`` group to the main app."""
    app.add_typer(config_app, name="config")
