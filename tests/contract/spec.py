"""Twilio's OpenAPI description for the contract tests: where it is, how strict to read it.

The description (``twilio_api_v2010.json``, MIT) is read from ``../shared/reference/twilio/``
next to the repository, or from where ``NUDGE_TWILIO_OPENAPI`` says; it is never copied into
the repository. Tests that need it skip, with :data:`MISSING`, when it is absent.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

API = "https://api.twilio.com"
SPEC_NAME = "twilio_api_v2010.json"
#: Why a contract test skips.
MISSING = f"{SPEC_NAME} not found next to the repository"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "more_info": {"type": "string", "format": "uri"},
        "status": {"type": "integer"},
    },
}
#: Resource schemas whose every property Twilio always sends (null when empty).
EXACT_SCHEMAS = (
    "api.v2010.account.message",
    "api.v2010.account.incoming_phone_number",
    "api.v2010.account.available_phone_number_country.available_phone_number_local",
)
#: (path, method) of the operations the emulator serves.
OPERATIONS = (
    ("/2010-04-01/Accounts/{AccountSid}/Messages.json", "get"),
    ("/2010-04-01/Accounts/{AccountSid}/Messages.json", "post"),
    ("/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json", "get"),
    ("/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}/Local.json", "get"),
    ("/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json", "get"),
    ("/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json", "post"),
)


def strict_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of the description with exact resource shapes and an error response."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    for name in EXACT_SCHEMAS:
        schemas[name]["additionalProperties"] = False
        schemas[name]["required"] = sorted(schemas[name]["properties"])
    for path, method in OPERATIONS:
        operation = spec["paths"][path][method]
        operation["responses"]["default"] = {
            "description": "Twilio error",
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for code, response in operation["responses"].items():
            if code == "default":
                continue
            envelope = response["content"]["application/json"]["schema"]
            if "properties" in envelope:  # a list page
                envelope["additionalProperties"] = False
                keys = sorted(envelope["properties"])
                # AvailablePhoneNumbers pages carry only the records and the uri.
                is_search = "available_phone_numbers" in keys
                envelope["required"] = ["available_phone_numbers", "uri"] if is_search else keys
    return spec


def find_spec() -> Path | None:
    """The description next to the repository (or where NUDGE_TWILIO_OPENAPI says)."""
    override = os.environ.get("NUDGE_TWILIO_OPENAPI")
    if override:
        return Path(override)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "reference" / "twilio" / SPEC_NAME
        if candidate.is_file():
            return candidate
    return None


def load_spec() -> dict[str, Any]:
    """The description as JSON; skips the calling test when it is absent."""
    path = find_spec()
    if path is None:
        pytest.skip(MISSING)
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


@dataclass
class Exchange:
    """One request and its response; ``url`` is the Twilio URL before rewriting."""

    method: str
    url: str
    params: dict[str, Any] | None
    data: dict[str, Any] | None
    auth: tuple[str, str] | None
    status: int
    text: str
    content_type: str
    from_sdk: bool


def validate(openapi: OpenAPI, exchange: Exchange) -> None:
    """Check one exchange; raise with a readable reason when it does not match."""
    if not exchange.url.startswith(API):
        return  # other products (messaging.twilio.com) are not in this description
    request = requests.Request(
        exchange.method,
        exchange.url,
        params=exchange.params or {},
        data=exchange.data or {},
        auth=exchange.auth,
    ).prepare()
    openapi_request = RequestsOpenAPIRequest(request)
    if exchange.from_sdk:
        openapi.validate_request(openapi_request)
    response = requests.models.Response()
    response.status_code = exchange.status
    response.headers["Content-Type"] = exchange.content_type
    response._content = exchange.text.encode()
    openapi.validate_response(openapi_request, RequestsOpenAPIResponse(response))
    if exchange.status >= 400:
        assert json.loads(exchange.text)["status"] == exchange.status
