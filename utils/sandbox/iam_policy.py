"""A small evaluator of identity-based IAM policies for the sandbox.

It follows the IAM User Guide, "Policy evaluation logic" for the identity-based
policies of one principal: an explicit ``Deny`` wins over any ``Allow``; an
``Allow`` decides when no ``Deny`` matched; otherwise the request is implicitly
denied. Resource-based policies, SCPs, permission boundaries and session policies
are not evaluated, and ``Principal`` elements are ignored; the one resource-based policy
modelled is a role's trust policy, by :func:`evaluate_trust` (``sts:AssumeRole``).

Matching rules (IAM User Guide, "IAM JSON policy elements"):

- ``Action`` / ``NotAction``: case-insensitive, ``*`` and ``?`` wildcards.
- ``Resource`` / ``NotResource``: case-sensitive, ``*`` and ``?`` wildcards. A policy
  variable (``${...}``) raises :class:`UnsupportedPolicy`.
- ``Condition`` ("Condition operators"): values of one key are ORed; keys and
  operators are ANDed. Condition key names are case-insensitive. A key absent from
  the request makes the condition false, except for negated operators
  (``StringNotEquals``, ``ArnNotLike``, ...), which are then true, ``...IfExists``
  (true) and ``Null``. ``ForAllValues:`` over an absent or empty key is true,
  ``ForAnyValue:`` over one is false ("Set operators for multivalued context keys").

Anything this module does not understand raises :class:`UnsupportedPolicy`: a
sandbox that silently allowed would hide a wrong template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = ["Decision", "RequestContext", "TrustDecision", "UnsupportedPolicy", "evaluate", "evaluate_trust"]


class UnsupportedPolicy(ValueError):
    """The policy uses an element, operator or variable this evaluator does not model."""


@dataclass(frozen=True)
class RequestContext:
    """One authorisation request: an action on one resource, with its context keys.

    ``action`` is ``"service:Operation"`` (e.g. ``"dynamodb:PutItem"``), ``resource`` one
    ARN (or ``"*"``), ``condition_values`` maps a context key (e.g.
    ``"dynamodb:LeadingKeys"``) to its values; a single-valued key is a 1-tuple.
    """

    action: str
    resource: str
    condition_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def values_of(self, key: str) -> tuple[str, ...] | None:
        """Values of a context key, matched case-insensitively; None when absent."""
        wanted = key.lower()
        for name, values in self.condition_values.items():
            if name.lower() == wanted:
                return tuple(values)
        return None


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`evaluate`.

    ``statement`` names the deciding statement (its ``Sid``, else
    ``"policy[i].Statement[j]"``); it is None for an implicit deny.
    """

    allowed: bool
    explicit_deny: bool
    statement: str | None


@lru_cache(maxsize=1024)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _arn_match(pattern: str, value: str) -> bool:
    """ArnEquals/ArnLike: the six colon-separated parts are matched one by one."""
    pattern_parts = pattern.split(":", 5)
    value_parts = value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(_glob_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def match(policy_value: str, context_value: str) -> bool:
        try:
            return compare(float(context_value), float(policy_value))
        except ValueError:
            return False

    return match


def _bool_match(policy_value: str, context_value: str) -> bool:
    return policy_value.lower() == context_value.lower()


# Operator name -> (match(policy_value, context_value), negated).
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (_glob_match, False),
    "StringNotLike": (_glob_match, True),
    "ArnEquals": (_arn_match, False),
    "ArnLike": (_arn_match, False),
    "ArnNotEquals": (_arn_match, True),
    "ArnNotLike": (_arn_match, True),
    "Bool": (_bool_match, False),
    "NumericEquals": (_numeric(lambda c, p: c == p), False),
    "NumericNotEquals": (_numeric(lambda c, p: c == p), True),
    "NumericLessThan": (_numeric(lambda c, p: c < p), False),
    "NumericLessThanEquals": (_numeric(lambda c, p: c <= p), False),
    "NumericGreaterThan": (_numeric(lambda c, p: c > p), False),
    "NumericGreaterThanEquals": (_numeric(lambda c, p: c >= p), False),
}

_SET_PREFIXES = ("ForAllValues:", "ForAnyValue:")


def _policy_values(raw: Any) -> list[str]:
    values = []
    for item in _as_list(raw):
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, (str, int, float)):
            text = str(item)
        else:
            raise UnsupportedPolicy(f"condition value {item!r} is not a scalar")
        if "${" in text:
            raise UnsupportedPolicy(f"policy variable in condition value {text!r}")
        values.append(text)
    return values


def _null_condition(policy_values: list[str], context_values: tuple[str, ...] | None) -> bool:
    absent = not context_values
    return any((value.lower() == "true") == absent for value in policy_values)


def _condition_holds(operator: str, key: str, raw: Any, context: RequestContext) -> bool:
    """One operator applied to one key (IAM User Guide, "Condition operators")."""
    policy_values = _policy_values(raw)
    context_values = context.values_of(key)
    set_prefix = next((p for p in _SET_PREFIXES if operator.startswith(p)), None)
    base = operator[len(set_prefix) :] if set_prefix else operator
    if base == "Null" and set_prefix is None:
        return _null_condition(policy_values, context_values)
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator!r} is not supported")
    match, negated = _OPERATORS[base]

    def value_matches(value: str) -> bool:
        hit = any(match(policy_value, value) for policy_value in policy_values)
        return not hit if negated else hit

    if set_prefix == "ForAllValues:":
        return all(value_matches(v) for v in context_values or ())
    if set_prefix == "ForAnyValue:":
        return any(value_matches(v) for v in context_values or ())
    if not context_values:
        return if_exists or negated
    if negated:
        return all(value_matches(v) for v in context_values)
    return any(value_matches(v) for v in context_values)


def _conditions_hold(condition: Any, context: RequestContext) -> bool:
    if condition is None:
        return True
    if not isinstance(condition, Mapping):
        raise UnsupportedPolicy("Condition must be an object")
    results: list[bool] = []
    for operator, keys in condition.items():
        if not isinstance(keys, Mapping):
            raise UnsupportedPolicy(f"Condition operator {operator!r} must map keys to values")
        results.extend(_condition_holds(operator, key, raw, context) for key, raw in keys.items())
    return all(results)


def _element_matches(statement: Mapping[str, Any], name: str, value: str, matcher: Callable[[str, str], bool]) -> bool:
    positive, negative = statement.get(name), statement.get(f"Not{name}")
    if (positive is None) == (negative is None):
        raise UnsupportedPolicy(f"a statement needs exactly one of {name} and Not{name}")
    patterns = _as_list(positive if positive is not None else negative)
    hit = any(matcher(str(pattern), value) for pattern in patterns)
    return hit if positive is not None else not hit


def _action_matcher(pattern: str, action: str) -> bool:
    return _glob_match(pattern, action, ignore_case=True)


def _resource_matcher(pattern: str, resource: str) -> bool:
    if "${" in pattern:
        raise UnsupportedPolicy(f"policy variable in Resource {pattern!r}")
    return _glob_match(pattern, resource)


def _statement_applies(statement: Mapping[str, Any], context: RequestContext) -> bool:
    # No short-circuit: an unsupported construct raises even when the action differs.
    checks = [
        _element_matches(statement, "Action", context.action, _action_matcher),
        _element_matches(statement, "Resource", context.resource, _resource_matcher),
        _conditions_hold(statement.get("Condition"), context),
    ]
    return all(checks)


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = policy.get("Statement")
    if raw is None:
        raise UnsupportedPolicy("policy has no Statement")
    statements = _as_list(raw)
    if not all(isinstance(s, Mapping) for s in statements):
        raise UnsupportedPolicy("each Statement must be an object")
    return statements


def evaluate(policies: Sequence[Mapping[str, Any]], context: RequestContext) -> Decision:
    """Decide one request against the identity-based policies of one principal.

    ``policies`` are parsed policy documents (``{"Version": ..., "Statement": ...}``).
    Every statement is checked (so an unsupported construct anywhere raises
    :class:`UnsupportedPolicy`); an explicit deny decides, then an allow, else the
    request is implicitly denied (IAM User Guide, "Policy evaluation logic").
    """
    allow: str | None = None
    deny: str | None = None
    for policy_index, policy in enumerate(policies):
        for statement_index, statement in enumerate(_statements(policy)):
            effect = statement.get("Effect")
            if effect not in ("Allow", "Deny"):
                raise UnsupportedPolicy(f"Effect must be Allow or Deny, not {effect!r}")
            if not _statement_applies(statement, context):
                continue
            name = str(statement.get("Sid") or f"policy[{policy_index}].Statement[{statement_index}]")
            if effect == "Deny" and deny is None:
                deny = name
            elif effect == "Allow" and allow is None:
                allow = name
    if deny is not None:
        return Decision(allowed=False, explicit_deny=True, statement=deny)
    if allow is not None:
        return Decision(allowed=True, explicit_deny=False, statement=allow)
    return Decision(allowed=False, explicit_deny=False, statement=None)


# ---------------------------------------------------------------------------------------------
# Role trust policies (sts:AssumeRole)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustDecision:
    """Outcome of :func:`evaluate_trust`: ``allowed``; ``names_principal``: an allowing statement
    names the caller's own ARN (then, in the role's account, no identity policy is needed)."""

    allowed: bool
    names_principal: bool = False


def _trusted_principal(entry: str, caller_arn: str, principal_arn: str, account: str) -> tuple[bool, bool]:
    """(matches, names the principal itself) for one ``Principal.AWS`` entry (IAM User Guide,
    "AWS JSON policy elements: Principal"): ``*``, an account id or ``arn:...:iam::ACCOUNT:root``
    (any principal of that account), or a user, role or assumed-role session ARN. A session of a
    role matches the role's ARN."""
    if entry == "*":
        return True, False
    if re.fullmatch(r"[0-9]{12}", entry):
        return entry == account, False
    if re.fullmatch(r"arn:[a-z-]+:iam::[0-9]{12}:root", entry):
        return entry.split(":")[4] == account, False
    if "*" in entry or "?" in entry:
        raise UnsupportedPolicy(f"wildcards are not allowed in a Principal ARN: {entry!r}")
    hit = entry in (caller_arn, principal_arn)
    return hit, hit


def evaluate_trust(
    policy: Mapping[str, Any], *, caller_arn: str, principal_arn: str, account: str, context: RequestContext
) -> TrustDecision:
    """Whether a role's trust policy lets this caller assume it (``context.action`` is
    ``sts:AssumeRole``; its keys hold ``sts:ExternalId``, ``aws:PrincipalArn``,
    ``aws:PrincipalAccount``, ``aws:PrincipalOrgID`` as the caller presents them).

    ``caller_arn``: user or assumed-role session ARN; ``principal_arn``: the user or the role;
    ``account``: the caller's account. Only ``Principal: {"AWS": ...}`` or ``"*"`` statements can
    match (``Service``/``Federated`` principals are services, not callers). Explicit deny wins.
    """
    allow, names, deny = False, False, False
    for statement in _statements(policy):
        if "NotPrincipal" in statement:
            raise UnsupportedPolicy("NotPrincipal is not supported in trust policies")
        principal = statement.get("Principal")
        entries: list[Any] = ["*"] if principal == "*" else []
        if isinstance(principal, Mapping):
            entries = _as_list(principal.get("AWS", []))
        matches = [_trusted_principal(str(e), caller_arn, principal_arn, account) for e in entries]
        applies = [
            _element_matches(statement, "Action", context.action, _action_matcher),
            any(hit for hit, _ in matches),
            _conditions_hold(statement.get("Condition"), context),
        ]
        if not all(applies):
            continue
        if statement.get("Effect") == "Deny":
            deny = True
        elif statement.get("Effect") == "Allow":
            allow = True
            names = names or any(named for _, named in matches)
        else:
            raise UnsupportedPolicy(f"Effect must be Allow or Deny, not {statement.get('Effect')!r}")
    if deny:
        return TrustDecision(False)
    return TrustDecision(allow, allow and names)
