"""The validity rule (RFC 5280 4.1.2.5) at a fixed time: reject rather than clamp.

Pure: no AWS, no clock; ``check_validity`` is given "now" and the issuing CA's notAfter.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from kmsca.certificates import BACKDATE
from kmsca.errors import InvalidLifetime, LifetimeExceeded
from kmsca.issuance import IssuancePolicy, check_validity

from tests.support.records import NOW

POLICY = IssuancePolicy(max_lifetime_days=365, default_lifetime_days=90)
ISSUER_NOT_AFTER = NOW + timedelta(days=1825)


def test_the_default_lifetime_applies_when_none_is_asked() -> None:
    assert check_validity(None, POLICY, ISSUER_NOT_AFTER, NOW) == (NOW - BACKDATE, NOW + timedelta(days=90))


def test_not_before_is_backdated_five_minutes_for_clock_skew() -> None:
    not_before, _ = check_validity(1, POLICY, ISSUER_NOT_AFTER, NOW)
    assert NOW - not_before == timedelta(minutes=5)


@pytest.mark.parametrize("days", [1, 30, 365])
def test_a_lifetime_within_the_maximum_is_kept_exactly(days: int) -> None:
    assert check_validity(days, POLICY, ISSUER_NOT_AFTER, NOW)[1] == NOW + timedelta(days=days)


@pytest.mark.parametrize("days", [366, 100_000])
def test_a_lifetime_above_the_maximum_is_refused_not_clamped(days: int) -> None:
    with pytest.raises(LifetimeExceeded, match=f"lifetime_days {days} is above the maximum of 365 days"):
        check_validity(days, POLICY, ISSUER_NOT_AFTER, NOW)


@pytest.mark.parametrize("days", [0, -1])
def test_a_lifetime_below_one_day_is_invalid(days: int) -> None:
    with pytest.raises(InvalidLifetime, match=f"lifetime_days must be at least 1, got {days}"):
        check_validity(days, POLICY, ISSUER_NOT_AFTER, NOW)


def test_a_certificate_may_end_with_its_issuer_but_not_after_it() -> None:
    issuer_not_after = NOW + timedelta(days=30)
    assert check_validity(30, POLICY, issuer_not_after, NOW)[1] == issuer_not_after
    with pytest.raises(LifetimeExceeded, match="would outlive the issuing CA, which expires 2026-12-21T07:59:59Z"):
        check_validity(30, POLICY, issuer_not_after - timedelta(seconds=1), NOW)
