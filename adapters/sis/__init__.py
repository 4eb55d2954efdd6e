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
    from nudge.settings import Settings

SCHEMES = ("csv", "ethos")

#: Ethos knobs also read from settings when these (optional) fields exist there:
#: ``NUDGE_ETHOS_ID_CREDENTIAL``, ``NUDGE_ETHOS_PAGE_SIZE``, ``NUDGE_ETHOS_TIMEOUT_S`` (and
#: ``NUDGE_ETHOS_MAX_ATTEMPTS`` for the retry policy). Explicit knobs win.
_ETHOS_SETTINGS = {
    "id_credential": "ethos_id_credential",
    "page_size": "ethos_page_size",
    "timeout_s": "ethos_timeout_s",
}


def open_source(
    spec: str, *, settings: Settings, encoding: str | None = None, **knobs: Any
) -> SisSource:
    """Open ``csv:PATH`` or ``ethos:URL``; nothing is read until ``.read()``.

    ``encoding`` applies to CSV files that are not UTF-8. ``knobs`` go to the Ethos source
    (``id_credential``, ``page_size``, ``timeout_s``, ``retry``, ``transport``, ``sleep``);
    the API key comes from ``settings.ethos_api_key``. Raises :class:`SourceError` for a
    spec that names no known scheme.
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

    for knob, setting in _ETHOS_SETTINGS.items():
        value = getattr(settings, setting, None)
        if value is not None:
            knobs.setdefault(knob, value)
    attempts = getattr(settings, "ethos_max_attempts", None)
    if attempts is not None and "retry" not in knobs:
        from adapters.sis.ethos_source import RetryPolicy

        knobs["retry"] = RetryPolicy(max_attempts=int(attempts))
    return EthosSource(target, api_key=settings.ethos_api_key, **knobs)
