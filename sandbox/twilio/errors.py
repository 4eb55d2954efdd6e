"""Twilio's error responses, as the emulator sends them.

Twilio's REST API answers a failed call with ``{"code", "message", "more_info", "status"}``
and nothing else: an RFC 9457 body (with ``type`` and ``title``) would make the SDK raise
``TwilioServiceException`` instead of ``TwilioRestException``. Delivery failures (3xxxx)
are not HTTP errors: they appear later as a message's ``error_code`` and ``error_message``.
"""

from __future__ import annotations

from typing import Any

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"

#: code -> (HTTP status, message template). Templates may use {to}, {from_}, {path}.
SYNC_ERRORS: dict[int, tuple[int, str]] = {
    20001: (400, "Invalid parameter: {detail}"),
    20003: (401, "Authenticate"),
    20004: (405, "Method not allowed"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "Invalid 'To' Phone Number: {to}"),
    21212: (400, "Invalid From Number (caller ID): {from_}"),
    21266: (400, "'To' and 'From' number cannot be the same: {to}"),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by "
        "the 'To' number: {to}",
    ),
    21422: (400, "PhoneNumber is not available"),
    21452: (400, "No phone numbers found in area code {detail}"),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The From phone number {from_} is not a valid, SMS-capable inbound phone number or "
        "short code for your account.",
    ),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21611: (400, "This 'From' number has exceeded the maximum number of queued messages"),
    21612: (
        400,
        "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
        "number: {from_} via SMS.",
    ),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    # Twilio's catalogue names 21624 "Invalid validity period value" for Programmable SMS
    # (its page still quotes the old 14,400 s cap; the API now takes up to 36,000 s). Newer
    # pages also list 90007/90014 for the same condition, logged against Messaging Services;
    # a Messages create answering 400/21624 is our best reading, not a captured response.
    21624: (400, "Invalid validity period value: {detail}"),
    21635: (400, "'To' number cannot be a Landline"),
    21704: (400, "The Messaging Service contains no phone numbers"),
    21710: (409, "Phone Number or Short Code is already in the Messaging Service."),
    21711: (400, "This 'From' number is not permitted to send to this destination"),
}

#: Delivery error code -> error_message shown on the failed/undelivered message.
DELIVERY_ERRORS: dict[int, str] = {
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30034: "Message from an unregistered number",
    30036: "Validity Period Expired",
}

#: Delivery codes that end a message 'failed' (never left Twilio); others end 'undelivered'.
FAILED_CODES = frozenset({30001, 30002, 30034, 30036})


def is_delivery_code(code: int) -> bool:
    """Return True for codes reported on a message's status, not as an HTTP error."""
    return 30000 <= code < 40000


def http_status_for(code: int) -> int:
    """The HTTP status Twilio answers with for a synchronous error code."""
    if code in SYNC_ERRORS:
        return SYNC_ERRORS[code][0]
    return 400


def error_body(code: int, **fmt: Any) -> dict[str, Any]:
    """Build Twilio's error JSON for ``code``; unknown codes get a generic message."""
    status, template = SYNC_ERRORS.get(code, (400, "Error {code}"))
    values = {"to": "", "from_": "", "path": "", "detail": "", "code": code, **fmt}
    return {
        "code": code,
        "message": template.format(**values),
        "more_info": MORE_INFO.format(code=code),
        "status": status,
    }


def delivery_status_for(code: int) -> str:
    """'failed' or 'undelivered': the final status of a message that ends with ``code``."""
    return "failed" if code in FAILED_CODES else "undelivered"


def delivery_message_for(code: int) -> str:
    """The ``error_message`` of a message that ended with delivery error ``code``."""
    return DELIVERY_ERRORS.get(code, "Unknown error")
