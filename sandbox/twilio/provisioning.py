"""Phone numbers: search, buy, list, and Messaging Service sender pools.

The emulator's side of ``adapters/twilio/numbers.py``: AvailablePhoneNumbers ``Local``
(deterministic offers, see ``numbers.py``), IncomingPhoneNumbers (buy and list, oldest
first) and the Messaging Service ``PhoneNumbers`` pool (``messaging.twilio.com``, v1 shapes).
Each function is one API operation over the engine's store and knobs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sandbox.twilio.numbers import AREA_CODES, E164_RE, is_valid_area_code, offer_numbers
from sandbox.twilio.store import ServiceNumber, StoredNumber
from sandbox.twilio.wire import (
    API_PREFIX,
    ApiResult,
    api_error,
    envelope,
    friendly_name,
    iso8601,
    new_sid,
    parse_paging,
    render_incoming_number,
)

if TYPE_CHECKING:
    from sandbox.twilio.engine import Engine

SERVICE_SID_RE = re.compile(r"^MG[0-9a-fA-F]{32}$")


def available_local(
    engine: Engine, account_sid: str, country: str, query: Mapping[str, str]
) -> ApiResult:
    """GET AvailablePhoneNumbers/{Country}/Local.json (AreaCode, SmsEnabled, PageSize)."""
    path = f"{API_PREFIX}/{account_sid}/AvailablePhoneNumbers/{country}/Local.json"
    if country not in AREA_CODES:
        return api_error(20404, path=path)
    area_code = query.get("AreaCode") or None
    try:
        page_size, _ = parse_paging(query)
    except ValueError as exc:
        return api_error(20001, detail=str(exc))
    if area_code is not None and not is_valid_area_code(area_code):
        return api_error(20001, detail=f"AreaCode {area_code!r}")
    offered: list[dict[str, Any]] = []
    sms_wanted = query.get("SmsEnabled", "true").lower() != "false"
    if sms_wanted and area_code not in engine.config.exhausted_area_codes:
        offered = offer_numbers(
            country=country,
            area_code=area_code,
            count=page_size,
            taken=set(engine.store.number_by_phone),
            seed=engine.config.seed,
        )
    uri = f"{path}?{urlencode(list(query.items()))}" if query else path
    return ApiResult(200, {"available_phone_numbers": offered, "uri": uri})


def buy_number(engine: Engine, account_sid: str, form: Mapping[str, str]) -> ApiResult:
    """POST IncomingPhoneNumbers.json with PhoneNumber or AreaCode."""
    phone_number = form.get("PhoneNumber", "").strip()
    area_code = form.get("AreaCode", "").strip()
    if not phone_number and not area_code:
        return api_error(20001, detail="PhoneNumber or AreaCode is required")
    if not phone_number:
        if not is_valid_area_code(area_code):
            return api_error(20001, detail=f"AreaCode {area_code!r}")
        offered = (
            []
            if area_code in engine.config.exhausted_area_codes
            else offer_numbers(
                country="US",
                area_code=area_code,
                count=1,
                taken=set(engine.store.number_by_phone),
                seed=engine.config.seed,
            )
        )
        if not offered:
            return api_error(21452, detail=area_code)
        phone_number = str(offered[0]["phone_number"])
    if not E164_RE.match(phone_number) or phone_number in engine.store.number_by_phone:
        return api_error(21422)
    if phone_number.startswith("+1") and phone_number[2:5] in engine.config.exhausted_area_codes:
        return api_error(21422)
    number = StoredNumber(
        seq=engine.store.next_seq(),
        sid=new_sid("PN"),
        account_sid=account_sid,
        phone_number=phone_number,
        friendly_name=form.get("FriendlyName") or friendly_name(phone_number),
        created_at=engine.now(),
    )
    engine.store.add_number(number)
    return ApiResult(201, render_incoming_number(number))


def list_numbers(engine: Engine, account_sid: str, query: Mapping[str, str]) -> ApiResult:
    """GET IncomingPhoneNumbers.json (PhoneNumber, FriendlyName filters), oldest first."""
    try:
        page_size, page = parse_paging(query)
    except ValueError as exc:
        return api_error(20001, detail=str(exc))
    wanted_number = "".join(ch for ch in query.get("PhoneNumber", "") if ch.isdigit())
    wanted_name = query.get("FriendlyName")
    matching = [
        n
        for n in engine.store.numbers
        if n.account_sid == account_sid
        and (not wanted_number or wanted_number in n.phone_number)
        and (wanted_name is None or n.friendly_name == wanted_name)
    ]
    token = query.get("PageToken")
    start = page * page_size
    if token:
        sids = [n.sid for n in matching]
        if not token.startswith("PA") or token[2:] not in sids:
            return api_error(20001, detail="PageToken")
        start = sids.index(token[2:]) + 1
    chunk = matching[start : start + page_size]
    has_more = start + page_size < len(matching)
    filters = [(k, query[k]) for k in ("PhoneNumber", "FriendlyName") if k in query]
    body = envelope(
        "incoming_phone_numbers",
        [render_incoming_number(n) for n in chunk],
        path=f"{API_PREFIX}/{account_sid}/IncomingPhoneNumbers.json",
        filters=filters,
        page_size=page_size,
        page=page,
        token=token,
        next_token=f"PA{chunk[-1].sid}" if has_more and chunk else None,
        previous_token=None,
    )
    return ApiResult(200, body)


def add_to_service(
    engine: Engine, account_sid: str, service_sid: str, number_sid: str
) -> ApiResult:
    """POST messaging v1 Services/{Sid}/PhoneNumbers: put a bought number in the pool."""
    if not SERVICE_SID_RE.match(service_sid):
        return api_error(20404, path=f"/v1/Services/{service_sid}")
    number = engine.store.number_by_sid.get(number_sid)
    if number is None or number.account_sid != account_sid:
        return api_error(20404, path=f"/v1/PhoneNumbers/{number_sid}")
    if number_sid in engine.store.service_of_number:
        return api_error(21710)
    entry = ServiceNumber(service_sid, number_sid, account_sid, engine.now())
    engine.store.add_service_number(entry)
    return ApiResult(201, _render_service_number(entry, number))


def list_service_numbers(engine: Engine, account_sid: str, service_sid: str) -> ApiResult:
    """GET messaging v1 Services/{Sid}/PhoneNumbers (one page: pools are small)."""
    url = f"https://messaging.twilio.com/v1/Services/{service_sid}/PhoneNumbers"
    records = [
        _render_service_number(entry, engine.store.number_by_sid[entry.number_sid])
        for entry in engine.store.pools.get(service_sid, [])
        if entry.account_sid == account_sid
    ]
    size = max(50, len(records))
    meta = {
        "first_page_url": f"{url}?PageSize={size}&Page=0",
        "key": "phone_numbers",
        "next_page_url": None,
        "page": 0,
        "page_size": size,
        "previous_page_url": None,
        "url": f"{url}?PageSize={size}&Page=0",
    }
    return ApiResult(200, {"meta": meta, "phone_numbers": records})


def _render_service_number(entry: ServiceNumber, number: StoredNumber) -> dict[str, Any]:
    return {
        "account_sid": entry.account_sid,
        "capabilities": ["SMS", "MMS", "Voice"],
        "country_code": "US",
        "date_created": iso8601(entry.created_at),
        "date_updated": iso8601(entry.created_at),
        "phone_number": number.phone_number,
        "service_sid": entry.service_sid,
        "sid": number.sid,
        "url": f"https://messaging.twilio.com/v1/Services/{entry.service_sid}/PhoneNumbers/"
        f"{number.sid}",
    }
