"""The institution's SMS configuration: the rules an SMS admin edits with ``nudge config``.

Pure values and validation only; the database keeps one row of it (``models/config.py``).
Every key has a type, a default and a check; a bad key or value is refused with the allowed
keys or values listed, so ``nudge config set`` can say exactly what would have been right.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.keywords import DEFAULT_KEYWORD_LANGUAGES, check_languages
from domain.quiet_hours import parse_window
from domain.quota import QuotaUnit
from domain.revocation import DEFAULT_REVOCATION_PHRASES
from domain.urgent import DEFAULT_URGENT_PHRASE_LIST, check_phrases

#: The automatic answer to an urgent reply (``urgent_reply_text``), when it is switched on.
DEFAULT_URGENT_REPLY_TEXT = (
    "If you are in crisis or thinking about suicide, call or text 988 (Suicide & Crisis "
    "Lifeline, 24/7). If you are in immediate danger, call 911. A staff member will read "
    "your message."
)


class PhoneKind(StrEnum):
    """Canonical kinds the institution's phone type codes map to."""

    mobile = "mobile"
    home = "home"
    work = "work"
    parent = "parent"
    fax = "fax"
    other = "other"


class OptOutScope(StrEnum):
    """Whether a STOP silences every sender of the institution or only the one texted."""

    institution = "institution"
    sender = "sender"


#: Institution-style codes (Banner/Colleague extracts) and Ethos ``phoneType`` values.
DEFAULT_TYPE_CODE_MAP: dict[str, PhoneKind] = {
    **dict.fromkeys(["CELL", "CL", "C", "MOB", "MOBILE", "CP"], PhoneKind.mobile),
    **dict.fromkeys(["PR", "HOME", "HM", "H", "MA", "PERM", "VACATION"], PhoneKind.home),
    **dict.fromkeys(["WORK", "BUS", "BUSINESS", "WK", "OFF", "B", "SCHOOL"], PhoneKind.work),
    **dict.fromkeys(
        ["PAR", "PARENT", "FAM", "FAMILY", "GUARD", "GUARDIAN", "EMER", "EMERGENCY"],
        PhoneKind.parent,
    ),
    **dict.fromkeys(["FAX", "FX"], PhoneKind.fax),
    **dict.fromkeys(["PAGER", "TDD", "MAIN", "OTHER"], PhoneKind.other),
}


class SmsConfig(BaseModel):
    """Every business rule nudge honours, with its default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    permitted_roles: list[str] = Field(
        default=["Texting"], description="Roles whose holders may start campaigns."
    )
    auto_opt_in: bool = Field(default=True, description="New students are opted in on sync.")
    default_phone_type: PhoneKind = Field(
        default=PhoneKind.mobile, description="Kind of number used for SMS."
    )
    monthly_limit: int | None = Field(
        default=10_000, ge=0, description="SMS allowed per month; None = no limit."
    )
    quota_unit: QuotaUnit = Field(default=QuotaUnit.MESSAGES)
    opt_out_scope: OptOutScope = Field(default=OptOutScope.institution)
    quiet_hours: str = Field(
        default="08:00-21:00",
        description="Permitted sending window in the recipient's local time, or 'off'.",
    )
    timezone: str = Field(default="America/New_York", description="Institution time zone.")
    default_region: str = Field(default="US", description="Region for numbers without +.")
    type_code_map: dict[str, PhoneKind] = Field(
        default_factory=lambda: dict(DEFAULT_TYPE_CODE_MAP),
        description="SIS phone type code -> kind (codes compared case-insensitively).",
    )
    max_deactivation_share: float = Field(
        default=0.10, ge=0, le=1, description="A sync deactivating more is refused."
    )
    max_phone_removal_share: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="A sync removing more of the stored phone rows is refused.",
    )
    max_reachability_loss_share: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="A sync after which more of the SMS-reachable active students have no "
        "number we can text is refused.",
    )
    revocation_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REVOCATION_PHRASES),
        description="Replies containing these are flagged for review.",
    )
    keyword_languages: list[str] = Field(
        default_factory=lambda: list(DEFAULT_KEYWORD_LANGUAGES),
        description="Languages of the STOP/START/HELP keywords honoured (en always).",
    )
    keyword_replies: bool = Field(
        default=False,
        description="Send nudge's own STOP/START/HELP replies (Twilio already does).",
    )
    help_text: str = Field(
        default="Reply STOP to stop receiving messages. Contact your advisor for help.",
        description="nudge's own HELP reply, used only when keyword_replies is on.",
    )
    urgent_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_URGENT_PHRASE_LIST),
        description="Crisis and safety phrases that make a reply urgent (domain/urgent.py: "
        "sources, matching, accepted false positives); setting the key replaces the whole "
        "list, empty turns urgent replies off.",
    )
    urgent_auto_reply: bool = Field(
        default=False,
        description="Answer an urgent reply at once with urgent_reply_text, by text from the "
        "number the student texted (never to an opted-out or paused number).",
    )
    urgent_reply_text: str = Field(
        default=DEFAULT_URGENT_REPLY_TEXT,
        min_length=1,
        max_length=640,
        description="nudge's automatic answer to an urgent reply (the crisis line), used "
        "only when urgent_auto_reply is on.",
    )
    reachability_threshold: float = Field(
        default=0.95, ge=0, le=1, description="Alert when fewer students are SMS-reachable."
    )
    reachability_drop_points: float = Field(
        default=2.0, ge=0, description="Alert when reachability drops by more points."
    )
    shared_number_threshold: float = Field(
        default=0.02, ge=0, le=1, description="Largest acceptable share of shared numbers."
    )
    stale_years: float = Field(default=3.0, gt=0, description="A number older than this is stale.")
    stale_share: float = Field(default=0.25, ge=0, le=1, description="Largest stale share.")

    @field_validator("quiet_hours")
    @classmethod
    def _check_window(cls, value: str) -> str:
        window = parse_window(value)  # raises ValueError with the accepted format
        return "off" if window is None else str(window)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. America/Chicago)") from exc
        return value

    @field_validator("default_region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError("expected a two-letter ISO country code such as US")
        return value.upper()

    @field_validator("type_code_map")
    @classmethod
    def _upper_codes(cls, value: dict[str, PhoneKind]) -> dict[str, PhoneKind]:
        return {code.strip().upper(): kind for code, kind in value.items()}

    @field_validator("keyword_languages")
    @classmethod
    def _check_languages(cls, value: list[str]) -> list[str]:
        return check_languages(value)  # raises ValueError naming the allowed languages

    @field_validator("urgent_phrases")
    @classmethod
    def _check_urgent_phrases(cls, value: list[str]) -> list[str]:
        return check_phrases(value)  # raises ValueError naming a phrase with no words

    @field_validator("urgent_reply_text")
    @classmethod
    def _check_reply_text(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("the automatic answer cannot be empty")
        return text

    @field_validator("permitted_roles")
    @classmethod
    def _clean_roles(cls, value: list[str]) -> list[str]:
        return [r.strip() for r in value if r.strip()]


class ConfigError(ValueError):
    """A configuration key or value was refused; the message lists what is allowed."""


def settable_keys() -> list[str]:
    """Keys ``nudge config set`` accepts, in a stable order."""
    return list(SmsConfig.model_fields)


def _parse_value(key: str, text: str) -> Any:
    field = SmsConfig.model_fields[key]
    annotation = field.annotation
    stripped = text.strip()
    if annotation == list[str]:
        return [part for part in (p.strip() for p in stripped.split(",")) if part]
    if annotation is bool:
        lowered = stripped.lower()
        if lowered in {"true", "yes", "on", "1"}:
            return True
        if lowered in {"false", "no", "off", "0"}:
            return False
        raise ConfigError(f"{key}: expected true or false, got {text!r}")
    if annotation == int | None:
        if stripped.lower() in {"none", "off", "unlimited", ""}:
            return None
        return stripped
    if key == "type_code_map":
        # CODE=kind pairs, comma-separated: "CELL=mobile,PR=home"
        pairs: dict[str, str] = {}
        for part in stripped.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ConfigError(f"type_code_map: expected CODE=kind pairs, got {part!r}")
            code, kind = part.split("=", 1)
            pairs[code.strip()] = kind.strip()
        return pairs
    return stripped


def apply_setting(config: SmsConfig, key: str, text: str) -> SmsConfig:
    """Return a copy of ``config`` with ``key`` set from its text form, or raise ConfigError.

    The error names the key and lists the allowed keys, or the allowed values for enums.
    """
    if key not in SmsConfig.model_fields:
        raise ConfigError(f"unknown key {key!r}; allowed keys: {', '.join(settable_keys())}")
    value = _parse_value(key, text)
    data = config.model_dump()
    data[key] = value
    try:
        return SmsConfig.model_validate(data)
    except ValidationError as exc:
        annotation = SmsConfig.model_fields[key].annotation
        allowed = ""
        if isinstance(annotation, type) and issubclass(annotation, StrEnum):
            allowed = f"; allowed values: {', '.join(m.value for m in annotation)}"
        detail = "; ".join(err["msg"] for err in exc.errors())
        raise ConfigError(f"{key}: invalid value {text!r}: {detail}{allowed}") from exc
