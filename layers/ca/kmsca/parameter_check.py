"""Deploy-time checks of parameter combinations that CloudFormation ``Rules`` cannot express.

``Rules`` assertions compare strings and lists (``Fn::Equals``, ``Fn::Contains``,
``Fn::EachMemberIn``, ...), never numbers, so "DefaultLifetimeDays at most MaxLifetimeDays" needs
code: the ``Custom::ParameterCheck`` resource (served by the bootstrap function) runs
:func:`check_parameters` first, and its failure fails the deploy with a message naming the
parameters, before the CA hierarchy or any certificate exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import ConfigurationError

#: The resource type the bootstrap function dispatches on.
RESOURCE_TYPE = "Custom::ParameterCheck"


#: Field of :class:`LifetimeParameters` -> the template parameter (and custom resource property).
PARAMETERS = {
    "root_ca_lifetime_days": "RootCaLifetimeDays",
    "issuing_ca_lifetime_days": "IssuingCaLifetimeDays",
    "max_lifetime_days": "MaxLifetimeDays",
    "default_lifetime_days": "DefaultLifetimeDays",
    "acm_rotation_window_days": "AcmRotationWindowDays",
}


@dataclass(frozen=True)
class LifetimeParameters:
    """The template parameters whose combination is checked, in days (see :data:`PARAMETERS`)."""

    root_ca_lifetime_days: int
    issuing_ca_lifetime_days: int
    max_lifetime_days: int
    default_lifetime_days: int
    acm_rotation_window_days: int

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> LifetimeParameters:
        """From the custom resource's properties (CloudFormation passes numbers as strings).

        Raises:
            ConfigurationError: a property is missing or not a whole number, naming its parameter.
        """
        values: dict[str, int] = {}
        for f in fields(cls):
            name = PARAMETERS[f.name]
            raw = properties.get(name)
            try:
                values[f.name] = int(str(raw))
            except ValueError:
                raise ConfigurationError(f"{name} must be a whole number of days, got {raw!r}") from None
        return cls(**values)


def problems(p: LifetimeParameters) -> list[str]:
    """Every rule the combination breaks, one sentence each naming the parameters (empty: fine)."""
    found = []
    if p.default_lifetime_days > p.max_lifetime_days:
        found.append(
            f"DefaultLifetimeDays ({p.default_lifetime_days}) is above MaxLifetimeDays ({p.max_lifetime_days}): "
            "every request without lifetime_days would be refused"
        )
    if p.issuing_ca_lifetime_days >= p.root_ca_lifetime_days:
        found.append(
            f"IssuingCaLifetimeDays ({p.issuing_ca_lifetime_days}) is not below RootCaLifetimeDays "
            f"({p.root_ca_lifetime_days}): the issuing CA certificate would outlive its root"
        )
    if p.acm_rotation_window_days >= p.default_lifetime_days:
        found.append(
            f"AcmRotationWindowDays ({p.acm_rotation_window_days}) is not below DefaultLifetimeDays "
            f"({p.default_lifetime_days}), the lifetime of a CloudFront origin certificate: every rotation run "
            "would re-issue it"
        )
    return found


#: How many CallerAccountIds the template turns into resource-based permissions (no loops in CloudFormation).
MAX_CALLER_ACCOUNTS = 3


def caller_account_problems(joined: str) -> list[str]:
    """What is wrong with the comma-joined ``CallerAccountIds`` (empty: fine): more than
    :data:`MAX_CALLER_ACCOUNTS`, an id that is not 12 digits, or an id listed twice."""
    ids = [part.strip() for part in joined.split(",")] if joined.strip() else []
    found = []
    if len(ids) > MAX_CALLER_ACCOUNTS:
        found.append(
            f"CallerAccountIds lists {len(ids)} accounts; at most {MAX_CALLER_ACCOUNTS} are supported "
            "(name the organisation with CallerOrganizationId instead)"
        )
    bad = [i for i in ids if not (len(i) == 12 and i.isdigit())]
    if bad:
        found.append(f"CallerAccountIds: {bad[0][:20]!r} is not a 12-digit AWS account id")
    if len(set(ids)) != len(ids):
        found.append("CallerAccountIds lists an account twice")
    return found


def check_parameters(properties: Mapping[str, Any]) -> dict[str, str]:
    """Check the combination; the custom resource's attributes when it is fine.

    Raises:
        ConfigurationError: every broken rule, joined with ``; `` (the deploy fails with it).
    """
    broken = problems(LifetimeParameters.from_properties(properties))
    broken += caller_account_problems(str(properties.get("CallerAccountIds") or ""))
    if broken:
        raise ConfigurationError("; ".join(broken))
    return {"Checked": "yes"}
