"""`nudge config set` semantics: every key parses from text; bad input names what is allowed."""

from __future__ import annotations

import pytest

from domain.config import ConfigError, OptOutScope, PhoneKind, QuotaUnit, SmsConfig, apply_setting


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        pytest.param(
            "permitted_roles", "Texting, Advisor ,", ["Texting", "Advisor"], id="roles-list"
        ),
        pytest.param("auto_opt_in", "false", False, id="bool-false"),
        pytest.param("auto_opt_in", "YES", True, id="bool-yes"),
        pytest.param("default_phone_type", "home", PhoneKind.home, id="phone-type"),
        pytest.param("monthly_limit", "5000", 5000, id="limit"),
        pytest.param("monthly_limit", "unlimited", None, id="limit-none"),
        pytest.param("quota_unit", "segments", QuotaUnit.SEGMENTS, id="unit"),
        pytest.param("opt_out_scope", "sender", OptOutScope.sender, id="scope"),
        pytest.param("quiet_hours", "09:30-20:00", "09:30-20:00", id="window"),
        pytest.param("quiet_hours", "OFF", "off", id="window-off"),
        pytest.param("timezone", "America/Chicago", "America/Chicago", id="tz"),
        pytest.param(
            "type_code_map",
            "cell=mobile, XX=parent",
            {"CELL": PhoneKind.mobile, "XX": PhoneKind.parent},
            id="code-map",
        ),
    ],
)
def test_apply_setting_parses_text(key: str, text: str, expected: object) -> None:
    assert getattr(apply_setting(SmsConfig(), key, text), key) == expected


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        pytest.param("colour", "blue", "allowed keys: permitted_roles", id="unknown-key"),
        pytest.param("quota_unit", "bytes", "allowed values: messages, segments", id="bad-enum"),
        pytest.param(
            "opt_out_scope", "galaxy", "allowed values: institution, sender", id="bad-scope"
        ),
        pytest.param("auto_opt_in", "maybe", "expected true or false", id="bad-bool"),
        pytest.param("quiet_hours", "8am-9pm", "quiet_hours: invalid value", id="bad-window"),
        pytest.param("timezone", "Mars/Olympus", "unknown time zone", id="bad-tz"),
        pytest.param("monthly_limit", "-3", "greater than or equal to 0", id="negative-limit"),
        pytest.param("type_code_map", "CELL", "CODE=kind", id="bad-map"),
    ],
)
def test_apply_setting_refuses_with_what_is_allowed(key: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_setting(SmsConfig(), key, text)


def test_defaults_round_trip_through_json() -> None:
    config = SmsConfig()
    assert SmsConfig.model_validate(config.model_dump(mode="json")) == config
