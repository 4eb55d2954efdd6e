"""adapters/ talk to the outside and to nothing of ours above them.

They never import models/ (no SQL behind a gateway), nor tasks/ or flows/, nor the shell in
nudge/ (``nudge.settings`` above all): each adapter takes a small frozen config of its own,
built at the shell. Read from the source with ``ast`` (tests/imports.py).
"""

from __future__ import annotations

from tests.imports import ROOT, Import, imports_in_source, imports_of

FORBIDDEN = {
    "models": "adapters never import models/",
    "tasks": "adapters sit below tasks/",
    "flows": "adapters sit below flows/",
    "nudge": "adapters take their own configs; settings are read at the shell (nudge/)",
}


def offenders(imports: list[Import]) -> list[str]:
    return [f"{i}  ({FORBIDDEN[i.top]})" for i in imports if i.top in FORBIDDEN]


def test_adapters_import_no_models_no_settings_nothing_above_them() -> None:
    files, imports = imports_of("adapters")
    assert len(files) > 5  # found the room
    found = offenders(imports)
    assert not found, "adapters/ import what they must not:\n" + "\n".join(found)


def test_the_check_names_the_file_the_line_and_the_rule() -> None:
    source = "from nudge.settings import Settings\n\ndef f():\n    from models.people import x\n"
    found = offenders(imports_in_source(source, ROOT / "adapters" / "gateway.py"))
    assert found == [
        "adapters/gateway.py:1: nudge.settings  (adapters take their own configs; settings are "
        "read at the shell (nudge/))",
        "adapters/gateway.py:4: models.people  (adapters never import models/)",
    ]
