"""The sandbox's function-URL authorisation (utils/sandbox/function_urls.py) without a server:
SigV4 verification against moto's keys, and Lambda's rules for identity and resource policies."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from utils.sandbox.function_urls import CallerIdentity, authorize, verify_signature

FUNCTION = "arn:aws:lambda:eu-west-1:111111111111:function:kmsca-IssueFunction"
URL = "http://127.0.0.1:4566/__lambda_url__/abc/"
BOTH = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"], "Resource": FUNCTION}
    ],
}


def caller(account: str, policies: list[dict[str, Any]], org: str | None = None) -> CallerIdentity:
    identity = CallerIdentity.__new__(CallerIdentity)
    identity.access_key_id, identity.account, identity.org_id = "AKIAX", account, org
    identity.arn = identity.principal_arn = f"arn:aws:iam::{account}:user/ci"
    identity.caller_id, identity.policies = "AIDAX", policies
    return identity


def permission(principal: str, action: str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": FUNCTION}
    if condition:
        statement["Condition"] = condition
    return statement


CROSS_ACCOUNT = [
    permission("222222222222", "lambda:InvokeFunctionUrl", StringEquals={"lambda:FunctionUrlAuthType": "AWS_IAM"}),
    permission("222222222222", "lambda:InvokeFunction", Bool={"lambda:InvokedViaFunctionUrl": "true"}),
]
ORGANIZATION = [
    permission("*", "lambda:InvokeFunctionUrl", StringEquals={"aws:PrincipalOrgID": "o-abcdefghij"}),
    permission("*", "lambda:InvokeFunction", StringEquals={"aws:PrincipalOrgID": "o-abcdefghij"}),
]


def test_the_function_account_needs_the_identity_policy_or_the_resource_policy() -> None:
    assert authorize(caller("111111111111", [BOTH]), "111111111111", FUNCTION, []) is None
    assert authorize(caller("111111111111", []), "111111111111", FUNCTION, []) is not None
    own = [permission("111111111111", "lambda:InvokeFunctionUrl"), permission("111111111111", "lambda:InvokeFunction")]
    assert authorize(caller("111111111111", []), "111111111111", FUNCTION, own) is None


def test_another_account_needs_both() -> None:
    assert authorize(caller("222222222222", [BOTH]), "111111111111", FUNCTION, CROSS_ACCOUNT) is None
    assert authorize(caller("222222222222", [BOTH]), "111111111111", FUNCTION, []) is not None
    assert authorize(caller("222222222222", []), "111111111111", FUNCTION, CROSS_ACCOUNT) is not None
    assert authorize(caller("333333333333", [BOTH]), "111111111111", FUNCTION, CROSS_ACCOUNT) is not None


def test_the_url_permission_alone_is_not_enough() -> None:
    url_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl", "Resource": FUNCTION}]}  # fmt: skip
    assert "lambda:InvokeFunction " in str(authorize(caller("111111111111", [url_only]), "111111111111", FUNCTION, []))


def test_an_organization_is_matched_by_principal_org_id() -> None:
    assert authorize(caller("444444444444", [BOTH], "o-abcdefghij"), "111111111111", FUNCTION, ORGANIZATION) is None
    assert authorize(caller("444444444444", [BOTH], "o-zzzzzzzzzz"), "111111111111", FUNCTION, ORGANIZATION)
    assert authorize(caller("444444444444", [BOTH]), "111111111111", FUNCTION, ORGANIZATION)


def test_an_explicit_deny_wins() -> None:
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "lambda:*", "Resource": "*"}]}
    assert "explicit deny" in str(authorize(caller("111111111111", [BOTH, deny]), "111111111111", FUNCTION, []))


@pytest.fixture
def key() -> Any:
    from moto.iam.models import iam_backends

    backend = iam_backends["555555555555"]["aws"]
    name = f"signer-{time.monotonic_ns()}"
    backend.create_user(region_name="us-east-1", user_name=name)
    return backend.create_access_key(name)


def signed(access_key_id: str, secret: str, region: str = "eu-west-1", service: str = "lambda") -> dict[str, str]:
    request = AWSRequest(method="POST", url=URL, data=b'{"a": 1}', headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(access_key_id, secret), service, region).add_auth(request)
    return {**dict(request.headers.items()), "Host": "127.0.0.1:4566"}


def test_a_valid_signature_names_the_caller_of_its_account(key: Any) -> None:
    identity = verify_signature("POST", URL, signed(key.access_key_id, key.secret_access_key), b'{"a": 1}', "eu-west-1")
    assert identity is not None and identity.account == "555555555555"
    assert identity.arn.startswith("arn:aws:iam::555555555555:user/signer-")


@pytest.mark.parametrize("change", ["body", "secret", "region", "service", "stale"])
def test_a_wrong_signature_names_nobody(key: Any, change: str) -> None:
    headers = signed(
        key.access_key_id,
        "wrong" if change == "secret" else key.secret_access_key,
        region="us-east-1" if change == "region" else "eu-west-1",
        service="execute-api" if change == "service" else "lambda",
    )
    body = json.dumps({"a": 2}).encode() if change == "body" else b'{"a": 1}'
    now = time.time() + 16 * 60 if change == "stale" else None
    assert verify_signature("POST", URL, headers, body, "eu-west-1", now=now) is None


def test_the_callers_organization_comes_from_moto() -> None:
    import boto3
    from moto import mock_aws

    from utils.sandbox.function_urls import _organization_of

    with mock_aws():
        organizations = boto3.client("organizations", region_name="us-east-1")
        org = organizations.create_organization(FeatureSet="ALL")["Organization"]
        member = organizations.create_account(Email="w@example.com", AccountName="w")["CreateAccountStatus"]
        assert _organization_of(member["AccountId"]) == org["Id"]
        assert _organization_of(org["MasterAccountId"]) == org["Id"]
        assert _organization_of("999999999999") is None
