"""What a room of the source tree imports, read from its files with ``ast`` (nothing is
imported or run): the layering tests in tests/domain and tests/adapters are built on it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_DYNAMIC = {"import_module", "__import__"}


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module (absolute name), and where: ``domain/routing.py:12``."""

    module: str
    where: str

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        return f"{self.where}: {self.module}"


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.attr if func.value.id == "importlib" else None
    return None


def _package_of(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts if path.name == "__init__.py" else parts[:-1]


def imports_in_source(source: str, path: Path) -> list[Import]:
    """Every module ``source`` (the file at ``path``, under the repository) imports, at any
    depth (functions, ``TYPE_CHECKING`` blocks): relative imports resolved against the
    file's package, and ``importlib.import_module`` / ``__import__`` calls counted too."""
    where_file = path.relative_to(ROOT).as_posix()
    found: list[Import] = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if not isinstance(node, ast.Import | ast.ImportFrom | ast.Call):
            continue
        where = f"{where_file}:{node.lineno}"
        if isinstance(node, ast.Import):
            found += [Import(alias.name, where) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(path)
                base = package[: len(package) - (node.level - 1)]
                found.append(Import(".".join([*base, *filter(None, [node.module])]), where))
            else:
                found.append(Import(node.module or "", where))
        elif isinstance(node, ast.Call) and _call_name(node.func) in _DYNAMIC:
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append(Import(arg.value, where))
            else:
                found.append(Import("<dynamic import>", where))
    return found


def imports_of(room: str) -> tuple[list[Path], list[Import]]:
    """The ``.py`` files of a top-level room (``"domain"``) and everything they import."""
    files = sorted((ROOT / room).rglob("*.py"))
    found: list[Import] = []
    for path in files:
        found += imports_in_source(path.read_text(encoding="utf-8"), path)
    return files, found
