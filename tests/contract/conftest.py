"""Fixtures of the contract tests: Twilio's OpenAPI description, raw and made strict."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_core import Config, OpenAPI

from tests.contract.spec import load_spec, strict_spec


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    """The description as published (skips when it is absent)."""
    return load_spec()


@pytest.fixture(scope="session")
def openapi(spec: dict[str, Any]) -> OpenAPI:
    """The description with exact resource shapes and Twilio's error shape."""
    return OpenAPI.from_dict(strict_spec(spec), config=Config(spec_validator_cls=None))
