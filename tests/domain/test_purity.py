"""domain/ is pure: it imports the standard library, pydantic, phonenumbers and itself only.

Read from the source with ``ast`` (tests/imports.py), so an import inside a function or a
``TYPE_CHECKING`` block counts as much as one at the top of a module: never prefect,
sqlmodel, twilio, httpx, nor models/, adapters/, tasks/ or the shell.
"""

from __future__ import annotations

import sys

import pytest

from tests.imports import ROOT, Import, imports_in_source, imports_of

ALLOWED = frozenset({"pydantic", "phonenumbers", "domain"})


def impure(imports: list[Import]) -> list[Import]:
    return [i for i in imports if i.top not in ALLOWED and i.top not in sys.stdlib_module_names]


def test_domain_imports_only_the_stdlib_pydantic_phonenumbers_and_itself() -> None:
    files, imports = imports_of("domain")
    assert {p.name for p in files} >= {"routing.py", "phones.py", "outbox.py"}  # found the room
    offenders = impure(imports)
    assert not offenders, "domain/ must stay pure (stdlib, pydantic, phonenumbers, domain):\n" + (
        "\n".join(map(str, offenders))
    )


@pytest.mark.parametrize(
    ("source", "offender"),
    [
        pytest.param("import sqlmodel", "sqlmodel", id="top-level"),
        pytest.param("from prefect import flow", "prefect", id="from-import"),
        pytest.param("def f():\n    import httpx\n", "httpx", id="inside-a-function"),
        pytest.param(
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from models.db import x\n",
            "models.db",
            id="type-checking-block",
        ),
        pytest.param("from ..models import people", "models", id="relative-out-of-domain"),
        pytest.param("import importlib\nimportlib.import_module('twilio')", "twilio", id="dynamic"),
    ],
)
def test_the_check_sees_every_way_of_importing(source: str, offender: str) -> None:
    found = impure(imports_in_source(source, ROOT / "domain" / "rule.py"))
    assert [i.module for i in found] == [offender]
    assert found[0].where.startswith("domain/rule.py:")


def test_the_check_lets_pure_imports_through() -> None:
    source = "import re\nfrom datetime import UTC\nfrom pydantic import BaseModel\nfrom . import phones\n"
    assert impure(imports_in_source(source, ROOT / "domain" / "rule.py")) == []
