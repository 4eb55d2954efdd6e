"""A sandbox Ethos-style SIS API: ``persons`` with JWT auth, paging and injected faults.

``app`` holds the ASGI app and its knobs, ``convert`` turns a CSV extract into Ethos
records, ``server`` runs it on loopback (``run_ethos_sandbox``) or in the foreground.
"""

from __future__ import annotations

from sandbox.ethos.app import DEFAULT_API_KEY, EthosSandbox, EthosSandboxConfig, create_app
from sandbox.ethos.convert import (
    CODE_TO_PHONE_TYPE,
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
    "build_sandbox",
    "create_app",
    "person_guid",
    "person_to_ethos",
    "persons_from_extract",
    "persons_from_folder",
    "run_ethos_sandbox",
    "serve",
]
