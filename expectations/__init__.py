"""The data-quality expectation suites, kept as JSON beside this file, and their loader.

Each suite validates one snapshot frame (``students.json``: one row per active student;
``phones.json``: one row per phone of an active student). Every expectation carries in its
``meta`` a stable ``key``, a ``title``, a plain-language ``meaning`` and a ``fix`` hint: the
report and the advisors' follow-up lists show them.

The JSON holds the defaults. At run time the caller passes overrides by ``key`` (the
thresholds of ``nudge config``), so changing a threshold never means editing a suite. This
module is plain JSON handling: it never imports Great Expectations, so the CLI and the flow
modules stay cheap to import; the validation task hands the result to ``gx.ExpectationSuite``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

SUITES_DIR = Path(__file__).resolve().parent

#: Suite name -> the snapshot frame it validates, in report order.
SUITES: dict[str, str] = {"students": "students", "phones": "phones"}


class SuiteError(ValueError):
    """A suite file is malformed (missing meta, duplicate keys, unknown override key)."""


@cache
def _read(name: str) -> dict[str, Any]:
    if name not in SUITES:
        raise SuiteError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    path = SUITES_DIR / f"{name}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    keys = set()
    for exp in data.get("expectations", []):
        meta = exp.get("meta") or {}
        missing = [f for f in ("key", "title", "meaning", "fix") if not meta.get(f)]
        if missing:
            raise SuiteError(f"{path.name}: {exp.get('type')} lacks meta {', '.join(missing)}")
        if meta["key"] in keys:
            raise SuiteError(f"{path.name}: duplicate expectation key {meta['key']!r}")
        keys.add(meta["key"])
    return data


def load_suite(name: str) -> dict[str, Any]:
    """The suite ``name`` exactly as stored (a fresh copy the caller may change)."""
    return copy.deepcopy(_read(name))


def expectation_meta() -> dict[str, dict[str, Any]]:
    """Every expectation's meta by key, with its ``suite`` and ``type`` added, in suite order."""
    found: dict[str, dict[str, Any]] = {}
    for name in SUITES:
        for exp in _read(name)["expectations"]:
            meta = dict(exp["meta"])
            meta.update(suite=name, type=exp["type"])
            found[meta["key"]] = meta
    return found


def configured_suite(
    name: str, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Suite ``name`` with ``overrides[key]`` merged into the kwargs of the expectation
    whose meta key is ``key``, and the meaning and fix copied into ``notes`` (Data Docs
    shows notes beside each expectation).

    An override for a key no suite defines is refused: a typo must not silently leave a
    threshold at its default.
    """
    overrides = overrides or {}
    known = set(expectation_meta())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SuiteError(f"override for unknown expectation key(s): {', '.join(unknown)}")
    suite = load_suite(name)
    for exp in suite["expectations"]:
        meta = exp["meta"]
        exp["kwargs"].update(copy.deepcopy(dict(overrides.get(meta["key"], {}))))
        exp["notes"] = f"**{meta['title']}.** {meta['meaning']}\n\n**How to fix:** {meta['fix']}"
    return suite


__all__ = [
    "SUITES",
    "SUITES_DIR",
    "SuiteError",
    "configured_suite",
    "expectation_meta",
    "load_suite",
]
