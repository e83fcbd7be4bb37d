"""The sandbox's IAM evaluator against the IAM User Guide's rules (policy evaluation logic,
condition operators, set operators)."""

from __future__ import annotations

from typing import Any

import pytest

from utils.sandbox.iam_policy import Decision, RequestContext, UnsupportedPolicy, evaluate, evaluate_trust

TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/certs"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def ctx(action: str = "dynamodb:PutItem", resource: str = TABLE, **keys: Any) -> RequestContext:
    values = {k.replace("__", ":").replace("_SLASH_", "/"): tuple(v) for k, v in keys.items()}
    return RequestContext(action=action, resource=resource, condition_values=values)


def statement(effect: str = "Allow", action: Any = "dynamodb:PutItem", resource: Any = TABLE, **extra: Any) -> dict:
    body: dict[str, Any] = {"Effect": effect, **extra}
    if action is not None:
        body["Action"] = action
    if resource is not None:
        body["Resource"] = resource
    return body


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allowed_by(condition: dict, context: RequestContext) -> bool:
    return evaluate([policy(statement(Condition=condition))], context).allowed


# ------------------------------------------------------------------ evaluation logic
def test_matching_allow_allows_and_names_the_statement() -> None:
    decision = evaluate([policy(statement(Sid="Write"))], ctx())
    assert decision == Decision(allowed=True, explicit_deny=False, statement="Write")


def test_no_matching_statement_is_an_implicit_deny() -> None:
    decision = evaluate([policy(statement(action="dynamodb:GetItem"))], ctx())
    assert decision == Decision(allowed=False, explicit_deny=False, statement=None)


def test_no_policy_at_all_is_an_implicit_deny() -> None:
    assert evaluate([], ctx()) == Decision(allowed=False, explicit_deny=False, statement=None)


def test_explicit_deny_wins_over_allow_in_another_policy() -> None:
    decision = evaluate([policy(statement()), policy(statement("Deny", Sid="NoWrites"))], ctx())
    assert decision == Decision(allowed=False, explicit_deny=True, statement="NoWrites")


def test_statement_without_sid_is_named_by_position() -> None:
    decision = evaluate([policy(statement(action="s3:*")), policy(statement("Deny"))], ctx())
    assert decision.statement == "policy[1].Statement[0]"


def test_statement_may_be_a_single_object() -> None:
    assert evaluate([{"Version": "2012-10-17", "Statement": statement()}], ctx()).allowed


# ------------------------------------------------------------------ Action / Resource
@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("dynamodb:PutItem", "dynamodb:PutItem", True),
        ("DynamoDB:putitem", "dynamodb:PutItem", True),  # actions are case-insensitive
        ("dynamodb:*", "dynamodb:PutItem", True),
        ("*", "kms:Sign", True),
        ("dynamodb:*Item", "dynamodb:PutItem", True),
        ("dynamodb:?etItem", "dynamodb:GetItem", True),
        ("dynamodb:?etItem", "dynamodb:PutItem", False),
        ("dynamodb:Put", "dynamodb:PutItem", False),
        (["kms:Sign", "dynamodb:PutItem"], "dynamodb:PutItem", True),
        ("kms:*", "dynamodb:PutItem", False),
    ],
)
def test_action_matching(pattern: Any, action: str, expected: bool) -> None:
    assert evaluate([policy(statement(action=pattern, resource="*"))], ctx(action)).allowed is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        (TABLE, TABLE, True),
        ("*", TABLE, True),
        ("arn:aws:dynamodb:*:123456789012:table/certs", TABLE, True),
        ("arn:aws:dynamodb:eu-west-1:123456789012:table/cert?", TABLE, True),
        ("arn:aws:dynamodb:eu-west-1:123456789012:table/CERTS", TABLE, False),  # resources are case-sensitive
        (TABLE, TABLE + "/index/byStatus", False),
        (TABLE + "/index/*", TABLE + "/index/byStatus", True),
        ([KEY, TABLE], TABLE, True),
    ],
)
def test_resource_matching(pattern: Any, resource: str, expected: bool) -> None:
    assert evaluate([policy(statement(resource=pattern))], ctx(resource=resource)).allowed is expected


@pytest.mark.parametrize(("action", "expected"), [("dynamodb:PutItem", False), ("dynamodb:GetItem", True)])
def test_not_action_matches_every_other_action(action: str, expected: bool) -> None:
    rule = statement(action=None, NotAction="dynamodb:Put*")
    assert evaluate([policy(rule)], ctx(action)).allowed is expected


@pytest.mark.parametrize(("resource", "expected"), [(TABLE, False), (KEY, True)])
def test_not_resource_matches_every_other_resource(resource: str, expected: bool) -> None:
    rule = statement(action="*", resource=None, NotResource="arn:aws:dynamodb:*")
    assert evaluate([policy(rule)], ctx(resource=resource)).allowed is expected


def test_deny_with_not_resource_denies_outside_resources() -> None:
    rules = policy(statement(action="*", resource="*"), statement("Deny", action="*", resource=None, NotResource=TABLE))
    assert evaluate([rules], ctx(resource=TABLE)).allowed
    assert evaluate([rules], ctx(resource=KEY)).explicit_deny


# ------------------------------------------------------------------ condition operators, key present
@pytest.mark.parametrize(
    ("operator", "policy_value", "context_value", "expected"),
    [
        ("StringEquals", "CERT#1", "CERT#1", True),
        ("StringEquals", "CERT#1", "cert#1", False),
        ("StringEquals", ["CA#1", "CERT#1"], "CERT#1", True),  # values of one key are ORed
        ("StringNotEquals", "CERT#1", "CERT#1", False),
        ("StringNotEquals", ["CA#1", "CERT#1"], "CERT#1", False),
        ("StringNotEquals", "CA#1", "CERT#1", True),
        ("StringEqualsIgnoreCase", "cert#1", "CERT#1", True),
        ("StringNotEqualsIgnoreCase", "cert#1", "CERT#1", False),
        ("StringLike", "CERT#*", "CERT#1", True),
        ("StringLike", "CERT#?", "CERT#12", False),
        ("StringNotLike", "CERT#*", "CA#1", True),
        ("StringNotLike", "CERT#*", "CERT#1", False),
        ("ArnEquals", KEY, KEY, True),
        ("ArnLike", "arn:aws:kms:*:123456789012:key/*", KEY, True),
        ("ArnLike", "arn:aws:kms:*:999999999999:key/*", KEY, False),
        ("ArnLike", "arn:aws:kms:*", KEY, False),  # ARNs match part by part: six parts needed
        ("ArnNotEquals", KEY, KEY, False),
        ("ArnNotLike", "arn:aws:s3:::*", KEY, True),
        ("Bool", "true", "true", True),
        ("Bool", True, "true", True),
        ("Bool", "false", "true", False),
        ("NumericEquals", "10", "10", True),
        ("NumericNotEquals", "10", "10", False),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "10", "11", True),
        ("NumericGreaterThanEquals", "10", "9", False),
        ("NumericEquals", "10", "ten", False),
    ],
)
def test_condition_operator_with_key_present(
    operator: str, policy_value: Any, context_value: str, expected: bool
) -> None:
    context = ctx(test__key=[context_value])
    assert allowed_by({operator: {"test:key": policy_value}}, context) is expected


def test_condition_key_names_are_case_insensitive() -> None:
    assert allowed_by({"StringEquals": {"AWS:SecureTransport": "true"}}, ctx(aws__securetransport=["true"]))


def test_condition_values_are_case_sensitive() -> None:
    assert not allowed_by({"StringEquals": {"test:key": "ABC"}}, ctx(test__key=["abc"]))


# ------------------------------------------------------------------ key absent
@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),
        ("StringLike", False),
        ("ArnLike", False),
        ("Bool", False),
        ("NumericLessThan", False),
        ("StringNotEquals", True),  # negated operators are true on an absent key
        ("StringNotLike", True),
        ("ArnNotLike", True),
        ("StringEqualsIfExists", True),
        ("StringLikeIfExists", True),
        ("BoolIfExists", True),
    ],
)
def test_condition_operator_with_key_absent(operator: str, expected: bool) -> None:
    assert allowed_by({operator: {"test:key": "true"}}, ctx()) is expected


@pytest.mark.parametrize(("value", "expected"), [("CERT#1", True), ("CA#1", False)])
def test_if_exists_applies_the_operator_when_the_key_is_present(value: str, expected: bool) -> None:
    assert allowed_by({"StringLikeIfExists": {"test:key": "CERT#*"}}, ctx(test__key=[value])) is expected


@pytest.mark.parametrize(
    ("null_value", "present", "expected"),
    [("true", False, True), ("true", True, False), ("false", True, True), ("false", False, False), (True, False, True)],
)
def test_null_checks_presence(null_value: Any, present: bool, expected: bool) -> None:
    context = ctx(test__key=["x"]) if present else ctx()
    assert allowed_by({"Null": {"test:key": null_value}}, context) is expected


def test_all_keys_and_operators_must_hold() -> None:
    condition = {"StringEquals": {"a:x": "1", "a:y": "2"}, "Bool": {"a:z": "true"}}
    assert allowed_by(condition, ctx(a__x=["1"], a__y=["2"], a__z=["true"]))
    assert not allowed_by(condition, ctx(a__x=["1"], a__y=["3"], a__z=["true"]))
    assert not allowed_by(condition, ctx(a__x=["1"], a__y=["2"], a__z=["false"]))


def test_allow_with_unmet_condition_is_an_implicit_deny_not_an_explicit_one() -> None:
    decision = evaluate([policy(statement(Condition={"StringEquals": {"a:x": "1"}}))], ctx(a__x=["2"]))
    assert decision == Decision(allowed=False, explicit_deny=False, statement=None)


# ------------------------------------------------------------------ set operators (dynamodb:LeadingKeys)
LEADING = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["CERT#*"]}}


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["CERT#1"], True),
        (["CERT#1", "CERT#2"], True),
        (["CERT#1", "CA#1"], False),
        (["CA#1"], False),
        ([], True),  # ForAllValues over an empty set is true
        (None, True),  # ... and over an absent key
    ],
)
def test_for_all_values_leading_keys(keys: list[str] | None, expected: bool) -> None:
    context = ctx() if keys is None else ctx(dynamodb__LeadingKeys=keys)
    assert allowed_by(LEADING, context) is expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [(["CA#1", "CERT#1"], True), (["CA#1"], False), ([], False), (None, False)],
)
def test_for_any_value(keys: list[str] | None, expected: bool) -> None:
    context = ctx() if keys is None else ctx(dynamodb__LeadingKeys=keys)
    assert allowed_by({"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": "CERT#*"}}, context) is expected


@pytest.mark.parametrize(("tags", "expected"), [(["managed-by"], True), (["managed-by", "owner"], False)])
def test_for_all_values_string_equals_on_tag_keys(tags: list[str], expected: bool) -> None:
    condition = {"ForAllValues:StringEquals": {"aws:TagKeys": ["managed-by", "ca"]}}
    assert allowed_by(condition, ctx(aws__TagKeys=tags)) is expected


def test_for_all_values_with_negated_operator() -> None:
    condition = {"ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": "CA#*"}}
    assert allowed_by(condition, ctx(dynamodb__LeadingKeys=["CERT#1"]))
    assert not allowed_by(condition, ctx(dynamodb__LeadingKeys=["CERT#1", "CA#1"]))


# ------------------------------------------------------------------ refusing what is not modelled
@pytest.mark.parametrize(
    "bad",
    [
        statement(Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}),
        statement(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        statement(resource="arn:aws:s3:::bucket/${aws:username}/*"),
        statement(Condition={"StringEquals": {"a:x": "${aws:username}"}}),
        statement(Effect="Maybe"),
        statement(resource=None),
        {"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"},
    ],
)
def test_unsupported_policy_raises(bad: dict) -> None:
    with pytest.raises(UnsupportedPolicy):
        evaluate([policy(bad)], ctx())


def test_unsupported_operator_raises_even_when_the_action_does_not_match() -> None:
    bad = statement(action="kms:Sign", Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01"}})
    with pytest.raises(UnsupportedPolicy):
        evaluate([policy(bad)], ctx("dynamodb:PutItem"))


# Role trust policies (sts:AssumeRole) ------------------------------------------------------------

CA = "111111111111"
CA_ROLE = f"arn:aws:iam::{CA}:role/ca-fn"
CA_SESSION = f"arn:aws:sts::{CA}:assumed-role/ca-fn/session"


def trust(principal: Any, effect: str = "Allow", **condition: Any) -> dict:
    body: dict[str, Any] = {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        body["Condition"] = {"StringEquals": {k.replace("__", ":"): v for k, v in condition.items()}}
    return {"Version": "2012-10-17", "Statement": [body]}


def trusts(document: dict, caller: str = CA_SESSION, principal: str = CA_ROLE, account: str = CA, **keys: str) -> Any:
    values = {k.replace("__", ":"): (v,) for k, v in keys.items()}
    context = RequestContext("sts:AssumeRole", "arn:aws:iam::222222222222:role/edge", values)
    return evaluate_trust(document, caller_arn=caller, principal_arn=principal, account=account, context=context)


@pytest.mark.parametrize(
    ("principal", "allowed", "named"),
    [
        ({"AWS": CA}, True, False),
        ({"AWS": f"arn:aws:iam::{CA}:root"}, True, False),
        ({"AWS": [CA_ROLE]}, True, True),  # a session matches its role's ARN
        ({"AWS": CA_SESSION}, True, True),
        ("*", True, False),
        ({"AWS": "*"}, True, False),
        ({"AWS": "999999999999"}, False, False),
        ({"AWS": f"arn:aws:iam::{CA}:role/other"}, False, False),
        ({"Service": "lambda.amazonaws.com"}, False, False),
    ],
)
def test_trust_principals(principal: Any, allowed: bool, named: bool) -> None:
    decision = trusts(trust(principal))
    assert (decision.allowed, decision.names_principal) == (allowed, named)


def test_trust_conditions_use_the_callers_keys() -> None:
    document = trust({"AWS": CA_ROLE}, sts__ExternalId="abc", aws__PrincipalAccount=CA)
    assert trusts(document, sts__ExternalId="abc", aws__PrincipalAccount=CA).allowed
    assert not trusts(document, sts__ExternalId="abd", aws__PrincipalAccount=CA).allowed
    assert not trusts(document, aws__PrincipalAccount=CA).allowed  # no external id presented


def test_an_explicit_deny_in_a_trust_policy_wins() -> None:
    document = trust({"AWS": CA})
    document["Statement"].append(trust({"AWS": CA_ROLE}, effect="Deny")["Statement"][0])
    assert not trusts(document).allowed


@pytest.mark.parametrize(
    "document",
    [
        {"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": CA}, "Action": "sts:AssumeRole"}]},
        trust({"AWS": f"arn:aws:iam::{CA}:role/*"}),
    ],
)
def test_unsupported_trust_constructs_raise(document: dict) -> None:
    with pytest.raises(UnsupportedPolicy):
        trusts(document)
