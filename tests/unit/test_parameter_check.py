"""The deploy-time check of parameter combinations CloudFormation Rules cannot compare (numbers)."""

from __future__ import annotations

from typing import Any

import pytest
from kmsca.errors import ConfigurationError
from kmsca.parameter_check import check_parameters

DEFAULTS = {  # template.yaml's defaults, as CloudFormation passes them (strings)
    "RootCaLifetimeDays": "3650",
    "IssuingCaLifetimeDays": "1825",
    "MaxLifetimeDays": "365",
    "DefaultLifetimeDays": "90",
    "AcmRotationWindowDays": "30",
}


def test_the_template_defaults_pass() -> None:
    assert check_parameters(DEFAULTS) == {"Checked": "yes"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"MaxLifetimeDays": "30"},
            "DefaultLifetimeDays (90) is above MaxLifetimeDays (30): every request without lifetime_days would be "
            "refused",
        ),
        (
            {"IssuingCaLifetimeDays": "3650"},
            "IssuingCaLifetimeDays (3650) is not below RootCaLifetimeDays (3650): the issuing CA certificate would "
            "outlive its root",
        ),
        (
            {"AcmRotationWindowDays": "90"},
            "AcmRotationWindowDays (90) is not below DefaultLifetimeDays (90), the lifetime of a CloudFront origin "
            "certificate: every rotation run would re-issue it",
        ),
        ({"MaxLifetimeDays": "ninety"}, "MaxLifetimeDays must be a whole number of days, got 'ninety'"),
    ],
)
def test_a_bad_combination_fails_naming_the_parameters(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_parameters({**DEFAULTS, **overrides})
    assert str(caught.value) == message


def test_every_broken_rule_is_reported_at_once() -> None:
    properties: dict[str, Any] = {**DEFAULTS, "MaxLifetimeDays": "30", "IssuingCaLifetimeDays": "4000"}
    with pytest.raises(ConfigurationError) as caught:
        check_parameters(properties)
    assert str(caught.value).count("; ") == 1
    assert "MaxLifetimeDays (30)" in str(caught.value) and "RootCaLifetimeDays (3650)" in str(caught.value)


def test_a_missing_property_is_named() -> None:
    properties = {k: v for k, v in DEFAULTS.items() if k != "AcmRotationWindowDays"}
    with pytest.raises(ConfigurationError, match="AcmRotationWindowDays must be a whole number of days, got None"):
        check_parameters(properties)


@pytest.mark.parametrize(
    ("accounts", "problem"),
    [
        ("111111111111,222222222222,333333333333,444444444444", "at most 3"),
        ("12345", "not a 12-digit AWS account id"),
        ("111111111111,111111111111", "twice"),
    ],
)
def test_caller_accounts_beyond_what_the_template_can_grant_are_refused(accounts: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        check_parameters({**DEFAULTS, "CallerAccountIds": accounts})
    assert check_parameters({**DEFAULTS, "CallerAccountIds": "111111111111,222222222222"}) == {"Checked": "yes"}
