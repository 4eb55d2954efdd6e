"""The ``roles`` group: who may text. Grant static roles, define dynamic ones."""

from __future__ import annotations

from typing import Annotated

import typer

from nudge.cli.common import JSON_HELP, emit, fail, group, session

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

roles_app = group("Who may text: grant roles, define dynamic roles.")


@roles_app.command("list")
def roles_list(json_out: JsonOpt = False) -> None:
    """Permitted roles, admin grants, dynamic roles, and staff holding a role from the SIS."""
    from models.campaigns import dynamic_roles
    from models.config import load_config
    from models.roles import grants, sis_roles

    with session() as s:
        config = load_config(session=s)
        data = {
            "permitted_roles": config.permitted_roles,
            "grants": [{"staff": g.staff_sis_id, "role": g.role} for g in grants(session=s)],
            "dynamic": {name: f.describe() for name, f in dynamic_roles(session=s).items()},
            "from_sis": sis_roles(session=s),
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: "\n".join(
            [
                "permitted roles: " + (", ".join(d["permitted_roles"]) or "none"),
                *(f"grant: {g['staff']} -> {g['role']}" for g in d["grants"]),
                *(f"dynamic: {n} = {desc}" for n, desc in d["dynamic"].items()),
                *(f"sis: {sid} -> {', '.join(r)}" for sid, r in d["from_sis"].items()),
            ]
        ),
    )


@roles_app.command("grant")
def roles_grant(
    staff: Annotated[str, typer.Argument(help="Staff SIS id.")],
    role: Annotated[str, typer.Argument(help="Role name, e.g. Texting.")],
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="The role is new: grant it although nobody holds it and it is not permitted.",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Grant a static role to a staff member (survives every sync).

    A role nobody holds and no configuration names is refused as a likely typo, with the
    closest known names; pass --create to start a new role.
    """
    from domain.roles import normalize_role
    from models.config import load_config
    from models.people import NoSuchStaff, require_staff
    from models.roles import grant_role, role_census

    with session() as s:
        try:
            require_staff(session=s, sis_id=staff)
        except NoSuchStaff as exc:
            fail(str(exc), as_json=json_out)
        permitted = load_config(session=s).permitted_roles
        census = role_census(session=s)
        for name in permitted:
            census.add(name)
        name = " ".join(role.split())
        if not name:
            fail("the role name is empty", as_json=json_out, code=2)
        if census.known(name):
            name = census.names[normalize_role(name)]  # the spelling already in use
        elif not create:
            near = census.closest(name)
            hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
            fail(
                f"unknown role {name!r}{hint}: nobody holds it and permitted_roles does not "
                f"name it; check the spelling, or pass --create to start a new role",
                as_json=json_out,
                code=2,
                known=sorted(census.names.values(), key=str.casefold),
            )
        new = grant_role(session=s, staff_sis_id=staff, role=name, granted_by="cli")
    may_text = normalize_role(name) in {normalize_role(r) for r in permitted}
    note = "" if may_text else " (not a permitted role: its holders may not text yet)"
    emit(
        {"staff": staff, "role": name, "granted": True, "new": new, "permitted": may_text},
        as_json=json_out,
        human=lambda d: f"{staff} {'now holds' if new else 'already held'} {name}{note}",
    )


@roles_app.command("revoke")
def roles_revoke(
    staff: Annotated[str, typer.Argument(help="Staff SIS id.")],
    role: Annotated[str, typer.Argument(help="Role name.")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a role an admin granted (roles from the SIS extract change in the SIS)."""
    from models.roles import revoke_role

    with session() as s:
        gone = revoke_role(session=s, staff_sis_id=staff, role=role)
    emit(
        {"staff": staff, "role": role, "revoked": gone},
        as_json=json_out,
        human=lambda d: f"revoked {role} from {staff}" if d["revoked"] else "no such grant",
    )


@roles_app.command("define")
def roles_define(
    name: Annotated[str, typer.Argument(help="Dynamic role name, e.g. Texting.")],
    department: Annotated[
        list[str] | None,
        typer.Option("--department", help="Staff in this department (repeatable, OR)."),
    ] = None,
    title_contains: Annotated[
        list[str] | None,
        typer.Option("--title-contains", help="Staff whose title contains this (repeatable, OR)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Define (or redefine) a dynamic role: every staff member matching the filter holds it."""
    from pydantic import ValidationError

    from domain.roles import RoleFilter
    from models.roles import define_dynamic_role

    try:
        spec = RoleFilter(departments=department or [], title_contains=title_contains or [])
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"], as_json=json_out, code=2)
    with session() as s:
        define_dynamic_role(session=s, name=name, spec=spec)
    emit(
        {"role": name, "filter": spec.model_dump(mode="json")},
        as_json=json_out,
        human=lambda d: f"{name} = {spec.describe()}",
    )


@roles_app.command("undefine")
def roles_undefine(
    name: Annotated[str, typer.Argument(help="Dynamic role name.")],
    json_out: JsonOpt = False,
) -> None:
    """Remove a dynamic role."""
    from models.roles import undefine_dynamic_role

    with session() as s:
        gone = undefine_dynamic_role(session=s, name=name)
    emit(
        {"role": name, "removed": gone},
        as_json=json_out,
        human=lambda d: f"removed {name}" if d["removed"] else f"no dynamic role {name}",
    )


def register(app: typer.Typer) -> None:
    """Add the ``roles`` group to the main app."""
    app.add_typer(roles_app, name="roles")
