"""A sandbox Ethos-style SIS API: ``persons`` with JWT auth, paging and injected faults.

``app`` holds the ASGI app and its knobs, ``convert`` reads a CSV extract (with its own
reader, not the ``csv:`` source under test) and turns it into Ethos records, ``server``
runs it on loopback (``run_ethos_sandbox``) or in the foreground.
"""

from __future__ import annotations

from sandbox.ethos.app import DEFAULT_API_KEY, EthosSandbox, EthosSandboxConfig, create_app
from sandbox.ethos.convert import (
    CODE_TO_PHONE_TYPE,
    ExtractError,
    person_guid,
    person_to_ethos,
    persons_from_extract,
    persons_from_folder,
)
from sandbox.ethos.server import build_sandbox, run_ethos_sandbox, serve

__all__ = [
    "CODE_TO_PHONE_TYPE",
    "DEFAULT_API_KEY",
    "EthosSandbox",
    "EthosSandboxConfig",
    "ExtractError",
    "build_sandbox",
    "create_app",
    "person_guid",
    "person_to_ethos",
    "persons_from_extract",
    "persons_from_folder",
    "run_ethos_sandbox",
    "serve",
]
