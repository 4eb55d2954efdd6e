"""Great Expectations, behind plain functions: the data-quality suites run over a snapshot.

The only code that talks to GX. :func:`frames` turns a snapshot into the pandas frames the
suites validate, :func:`run_suites` validates them and renders Data Docs, and each result is
read back as a :class:`~domain.quality.outcomes.Outcome` (the report's words for it).

Great Expectations and pandas are imported only inside these functions (GX's import costs
seconds): importing this module, the tasks, the flow and the CLI stays cheap. GX runs in an
*ephemeral* context built from the JSON suites in ``expectations/``: nothing accumulates
between runs (a file context's ``uncommitted/validations`` would grow forever), and its Data
Docs site is a plain folder inside the report folder. Its progress bars are switched off in
the context's config, so ``nudge report --json`` prints one clean JSON object. GX is told to
list no unexpected values: Data Docs would show phone numbers.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.config import SmsConfig
from domain.quality.alerts import suite_overrides
from domain.quality.metrics import Derived
from domain.quality.outcomes import Outcome, requirement_text
from domain.quality.snapshot import Snapshot
from expectations import SUITES, configured_suite, expectation_meta

DATA_DOCS_SITE = "nudge-report"
#: Data Docs ships 4 MB of tutorial images no page of ours shows: dropped from each report.
_DOCS_UNUSED = ("glossary_scroller.gif", "validation_failed_unexpected_values.gif",
                "iterative-dev-loop.png")  # fmt: skip


def import_gx() -> tuple[Any, float]:
    """Import Great Expectations (once per process); returns the module and seconds spent.

    Its import emits DeprecationWarnings from its own dependencies; they are GX's business,
    not ours, and would otherwise fail a test run where warnings are errors.
    """
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
        import great_expectations.checkpoint.actions
    return gx, time.perf_counter() - started


def frames(snapshot: Snapshot, derived: Derived) -> dict[str, Any]:
    """The pandas frames the suites validate, by suite name (columns per the suites' meta)."""
    import pandas as pd

    st, ph = snapshot.students, snapshot.phones
    students = pd.DataFrame(
        {
            "sis_id": pd.Series(st["sis_id"], dtype=object),
            "sms_e164": pd.Series(st["sms_e164"], dtype=object),
            "sms_reachable": pd.Series(derived.sms_reachable, dtype=bool),
            "sms_is_parent_number": pd.Series(st["sms_is_parent_number"], dtype=bool),
            "email": pd.Series(st["email"], dtype=object),
        }
    )
    phones = pd.DataFrame(
        {
            "e164": pd.Series(ph["e164"], dtype=object),
            "type_code": pd.Series(ph["type_code"], dtype=object),
            "kind": pd.Series(ph["kind"], dtype=object),
            "line_type": pd.Series(ph["line_type"], dtype=object),
            "valid": pd.Series(ph["valid"], dtype=bool),
            "age_years": pd.Series(derived.phone_age_years, dtype="float64"),
        }
    )
    return {"students": students, "phones": phones}


def run_suites(
    data: dict[str, Any],
    config: SmsConfig,
    *,
    docs_dir: Path | None,
    run_time: datetime,
    gx: Any | None = None,
) -> list[Outcome]:
    """Validate each frame against its suite in a fresh ephemeral GX context.

    With ``docs_dir``, each checkpoint's ``UpdateDataDocsAction`` renders Data Docs there
    (any earlier content of that folder is replaced).
    """
    if gx is None:
        gx, _ = import_gx()
    from great_expectations.checkpoint.actions import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    if docs_dir is not None:
        # GX's filesystem store refuses a relative base_directory (no root_directory in an
        # ephemeral context): the caller's path is made absolute here, whatever it was.
        docs_dir = Path(os.path.abspath(docs_dir.expanduser()))
        if docs_dir.exists():
            shutil.rmtree(docs_dir)
    context = gx.get_context(project_config=_context_config(docs_dir), mode="ephemeral")
    source = context.data_sources.add_pandas("nudge-snapshot")
    overrides = suite_overrides(config)
    meta = expectation_meta()
    run_id = RunIdentifier(run_name="data-quality", run_time=run_time)
    outcomes: list[Outcome] = []
    for name, frame in SUITES.items():
        spec = configured_suite(name, overrides)
        kwargs_by_key = {e["meta"]["key"]: e["kwargs"] for e in spec["expectations"]}
        batch = source.add_dataframe_asset(frame).add_batch_definition_whole_dataframe(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            suite = context.suites.add(gx.ExpectationSuite(**spec))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        actions = (
            [UpdateDataDocsAction(name="data-docs", site_names=[DATA_DOCS_SITE])]
            if docs_dir is not None
            else []
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"nudge-{name}",
                validation_definitions=[definition],
                actions=actions,
                # No unexpected values in results: Data Docs would print phone numbers.
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 0},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": data[frame]}, run_id=run_id)
        for validation in result.run_results.values():
            for item in validation.results:
                key = (item.expectation_config.meta or {}).get("key", "")
                outcomes.append(_outcome(item, meta.get(key, {}), kwargs_by_key.get(key, {})))
    order = {key: n for n, key in enumerate(meta)}
    outcomes.sort(key=lambda o: order.get(o.key, len(order)))
    if docs_dir is not None:
        for unused in _DOCS_UNUSED:
            (docs_dir / "static" / "images" / unused).unlink(missing_ok=True)
    return outcomes


def _context_config(docs_dir: Path | None) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites: dict[str, Any] = {}
    if docs_dir is not None:
        sites[DATA_DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    return DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites=sites,
    )


def _outcome(item: Any, meta: dict[str, Any], kwargs: dict[str, Any]) -> Outcome:
    result = item.result or {}
    error = None
    info = item.exception_info or {}
    if info.get("raised_exception"):
        error = str(info.get("exception_message") or "error")[:300]
    unexpected_pct = result.get("unexpected_percent")
    return Outcome(
        key=meta.get("key", "?"),
        suite=meta.get("suite", "?"),
        title=meta.get("title", item.expectation_config.type),
        success=bool(item.success),
        meaning=meta.get("meaning", ""),
        fix=meta.get("fix", ""),
        element_count=int(result.get("element_count") or 0),
        missing_count=int(result.get("missing_count") or 0),
        unexpected_count=int(result.get("unexpected_count") or 0),
        unexpected_percent=float(unexpected_pct) if unexpected_pct is not None else None,
        requirement=requirement_text(kwargs),
        error=error,
    )


def docs_index(docs_dir: Path | None) -> Path | None:
    """The front page of the Data Docs :func:`run_suites` rendered into ``docs_dir``, if any."""
    index = docs_dir / "index.html" if docs_dir is not None else None
    return index if index and index.exists() else None
