"""SIS sources: ``csv:PATH`` (a folder of CSV files) and ``ethos:URL`` (an Ethos-style API).

:func:`open_source` turns a source spec into a :class:`~adapters.sis.base.SisSource`. The
contract every source returns is in :mod:`adapters.sis.base`; the sources themselves are in
:mod:`adapters.sis.csv_source` and :mod:`adapters.sis.ethos_source`, imported on demand so
that importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.sis.base import SourceError

if TYPE_CHECKING:
    from adapters.sis.base import SisSource
    from adapters.sis.ethos_config import EthosConfig

SCHEMES = ("csv", "ethos")


def open_source(
    spec: str,
    *,
    ethos: EthosConfig | None = None,
    encoding: str | None = None,
    **knobs: Any,
) -> SisSource:
    """Open ``csv:PATH`` or ``ethos:URL``; nothing is read until ``.read()``.

    ``encoding`` applies to CSV files that are not UTF-8. An Ethos source is configured by
    ``ethos`` (built by ``nudge.wiring``; the defaults of
    :class:`~adapters.sis.ethos_config.EthosConfig`, which carry no API key, when not
    given); ``knobs`` override that (``id_credential``, ``page_size``, ``timeout_s``,
    ``retry``, ``api_key``) or are for tests (``transport``, ``sleep``). Raises
    :class:`SourceError` for a spec that names no known scheme.
    """
    scheme, sep, target = spec.partition(":")
    scheme = scheme.strip().lower()
    target = target.strip()
    if not sep or scheme not in SCHEMES or not target:
        raise SourceError(
            f"unknown SIS source {spec!r}: expected csv:PATH (a folder with people.csv and "
            "phones.csv) or ethos:URL (e.g. ethos:https://integrate.example.edu)"
        )
    if scheme == "csv":
        if knobs:
            raise SourceError(f"csv: source takes no options ({', '.join(sorted(knobs))})")
        from adapters.sis.csv_source import CsvSource

        return CsvSource(target, encoding=encoding)
    if encoding is not None:
        raise SourceError("--encoding applies to csv: sources only (Ethos sends JSON)")
    from adapters.sis.ethos_source import EthosSource

    return EthosSource(target, config=ethos, **knobs)
