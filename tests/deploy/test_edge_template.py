"""edge/template.yaml: the workload account's edge stack (KeyValueStore, connection function, edge role).

The edge role is what the CA account's functions act as in a workload account: its trust and
its permissions are checked here with the sandbox's IAM evaluator (utils/sandbox/iam_policy.py),
as tests/deploy/test_template_iam.py checks the CA functions: everything the CA needs there is allowed,
and every statement is used by one of those calls; what it must not do is refused.
"""

from __future__ import annotations

import re
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from tests.support import template_symbols
from tests.support.aws import REPO
from tests.support.template_symbols import as_list
from utils.sandbox.iam_policy import RequestContext, evaluate, evaluate_trust
from utils.sandbox.template import load_template

EDGE = load_template(REPO / "edge" / "template.yaml")
ACCOUNT = "222222222222"
CA_ACCOUNT = "111122223333"
REGION = "eu-west-1"
PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "TrustStoreId": "ts-1",
          "CaBundleBucketName": "ca-public-bucket"}  # fmt: skip
BUNDLE = "arn:aws:s3:::ca-public-bucket/ca-bundle.pem"

KVS = "arn:aws:RevokedSerialsStore"
OTHER_KVS = f"arn:aws:cloudfront::{ACCOUNT}:key-value-store/other"
TRUST_STORE = f"arn:aws:cloudfront::{ACCOUNT}:trust-store/ts-1"
ACM_NEW = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/11111111-new"
ACM_MANAGED = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/22222222-managed"
ACM_FOREIGN = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/33333333-foreign"
ACM_OTHER_REGION = f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/22222222-managed"
CA_TAGS = {"aws:RequestTag/managed-by": "kmsca", "aws:TagKeys": ["kmsca:serial-number", "kmsca:ca", "managed-by"]}
MANAGED = {"aws:ResourceTag/managed-by": "kmsca"}

Call = tuple[str, str, dict[str, Any]]

# What the CA's code calls through the edge role (kmsca/acm.py, rotation.py, kvs sync, trust store).
NEEDS: list[Call] = [
    ("acm:ImportCertificate", ACM_NEW, CA_TAGS),  # first import, tags on create
    ("acm:AddTagsToCertificate", ACM_NEW, CA_TAGS),  # ImportCertificate with Tags
    ("acm:ImportCertificate", ACM_MANAGED, MANAGED),  # rotation: re-import into the same ARN
    ("acm:DescribeCertificate", ACM_MANAGED, MANAGED),  # repair: what a managed ARN serves
    ("acm:GetCertificate", ACM_MANAGED, MANAGED),
    (
        "acm:AddTagsToCertificate",
        ACM_MANAGED,
        {**MANAGED, "aws:RequestTag/kmsca:serial-number": "0c0d", "aws:TagKeys": ["kmsca:serial-number"]},
    ),  # rotation: the serial-number tag
    ("acm:ListCertificates", "*", {}),  # repair of an import whose ARN was not recorded
    ("cloudfront-keyvaluestore:DescribeKeyValueStore", KVS, {}),
    ("cloudfront-keyvaluestore:ListKeys", KVS, {}),
    ("cloudfront-keyvaluestore:UpdateKeys", KVS, {}),
    ("cloudfront-keyvaluestore:GetKey", KVS, {}),
    ("cloudfront:GetTrustStore", TRUST_STORE, {}),
    ("cloudfront:UpdateTrustStore", TRUST_STORE, {}),
    ("s3:GetObject", BUNDLE, {}),  # UpdateTrustStore reads the bundle with the caller's permissions
    ("s3:GetObjectVersion", BUNDLE, {}),
]

REFUSED: list[Call] = [
    ("acm:ImportCertificate", ACM_FOREIGN, {}),  # re-import over a certificate the CA did not import
    ("acm:ImportCertificate", ACM_FOREIGN, {"aws:ResourceTag/managed-by": "someone-else"}),
    ("acm:ImportCertificate", ACM_NEW, {"aws:RequestTag/managed-by": "kmsca", "aws:TagKeys": ["managed-by", "owner"]}),
    ("acm:ImportCertificate", ACM_OTHER_REGION, MANAGED),  # CloudFront uses us-east-1 only
    ("acm:DescribeCertificate", ACM_FOREIGN, {}),
    ("acm:GetCertificate", ACM_FOREIGN, {}),
    ("acm:AddTagsToCertificate", ACM_FOREIGN, {"aws:TagKeys": ["owner"], "aws:RequestTag/owner": "x"}),
    ("acm:AddTagsToCertificate", ACM_MANAGED, {**MANAGED, "aws:TagKeys": ["managed-by"]}),
    ("acm:DeleteCertificate", ACM_MANAGED, MANAGED),
    ("acm:RemoveTagsFromCertificate", ACM_MANAGED, MANAGED),
    ("acm:ExportCertificate", ACM_MANAGED, MANAGED),
    ("cloudfront-keyvaluestore:UpdateKeys", OTHER_KVS, {}),
    ("cloudfront-keyvaluestore:DescribeKeyValueStore", OTHER_KVS, {}),
    ("cloudfront-keyvaluestore:DeleteKey", KVS, {}),
    ("cloudfront:UpdateTrustStore", f"arn:aws:cloudfront::{ACCOUNT}:trust-store/other", {}),
    ("cloudfront:DeleteTrustStore", TRUST_STORE, {}),
    ("cloudfront:UpdateConnectionFunction", f"arn:aws:cloudfront::{ACCOUNT}:connection-function/x", {}),
    ("iam:PassRole", "*", {}),
    ("s3:GetObject", "arn:aws:s3:::any/ca-bundle.pem", {}),
    ("s3:GetObject", "arn:aws:s3:::ca-public-bucket/root.crl", {}),
    ("s3:PutObject", BUNDLE, {}),
]


def test_a_trust_store_needs_the_bundle_bucket() -> None:
    rule = EDGE["Rules"]["TrustStoreNeedsTheBundleBucket"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "TrustStoreId"}, ""]}]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CaBundleBucketName"}, ""]}]}
    assert "CaBundleBucketName" in rule["Assertions"][0]["AssertDescription"]


def resolve(value: Any) -> Any:
    """Symbolic resolution: ``!GetAtt X.Arn`` is ``arn:aws:X``; ``${Param}`` its default or PSEUDO."""
    return template_symbols.resolve(value, PSEUDO, EDGE)


def role_statements() -> list[dict[str, Any]]:
    """The edge role's statements; the trust-store policy counts with its TrustStoreId branch."""
    found = []
    for policy in EDGE["Resources"]["EdgeRole"]["Properties"]["Policies"]:
        if "Fn::If" in policy:
            assert policy["Fn::If"][0] == "HasTrustStore" and policy["Fn::If"][2] == {"Ref": "AWS::NoValue"}
            policy = policy["Fn::If"][1]
        found.extend(resolve(policy["PolicyDocument"]["Statement"]))
    return found


def statement_allows(statement: dict[str, Any], action: str, resource: str, context: dict[str, Any]) -> bool:
    values = {key: tuple(str(v) for v in as_list(value)) for key, value in context.items()}
    return evaluate([{"Statement": [statement]}], RequestContext(action, resource, values)).allowed


def allowed(action: str, resource: str, context: dict[str, Any]) -> bool:
    return any(statement_allows(s, action, resource, context) for s in role_statements())


# Lint and layout -----------------------------------------------------------------------------


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(REPO / "edge" / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_interface_resources_and_outputs() -> None:
    resources = EDGE["Resources"]
    assert resources["RevokedSerialsStore"]["Type"] == "AWS::CloudFront::KeyValueStore"
    assert resources["RevocationCheckFunction"]["Type"] == "AWS::CloudFront::ConnectionFunction"
    assert resources["EdgeRole"]["Type"] == "AWS::IAM::Role"
    assert set(EDGE["Outputs"]) == {
        "EdgeRoleArn",
        "RevokedSerialsStoreArn",
        "RevocationCheckFunctionArn",
        "TrustStoreId",
        "AccountId",
    }
    assert EDGE["Outputs"]["TrustStoreId"]["Condition"] == "HasTrustStore"
    assert set(EDGE["Parameters"]) == {
        "CaProjectName",
        "CaEnvironmentName",
        "CaAccountId",
        "CaRoleArns",
        "ExternalId",
        "TrustStoreId",
        "CaBundleBucketName",
    }


def test_the_parameters_keep_the_ca_stacks_constraints(ca_template: dict[str, Any]) -> None:
    for edge, ca in (("CaProjectName", "ProjectName"), ("CaEnvironmentName", "EnvironmentName")):
        for key in ("AllowedPattern", "MaxLength", "Default"):
            assert EDGE["Parameters"][edge][key] == ca_template["Parameters"][ca][key], (edge, key)
    external = EDGE["Parameters"]["ExternalId"]
    assert external["NoEcho"] is True and (external["MinLength"], external["MaxLength"]) == (16, 1224)
    assert re.fullmatch(external["AllowedPattern"], "a" * 16 + "+=,.@:/-_9")
    assert not re.fullmatch(external["AllowedPattern"], "has a space in it!")
    assert EDGE["Parameters"]["CaRoleArns"]["Type"] == "CommaDelimitedList"
    assert EDGE["Parameters"]["CaAccountId"]["AllowedPattern"] == "^[0-9]{12}$"


@pytest.fixture
def ca_template() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


def test_the_template_carries_the_connection_function_code_unchanged() -> None:
    properties = EDGE["Resources"]["RevocationCheckFunction"]["Properties"]
    source = (REPO / "functions" / "connection" / "connection.js").read_text()
    assert properties["ConnectionFunctionCode"] == source, "run: python utils/embed-connection-function.py"
    assert len(source.encode()) < 10 * 1024
    config = properties["ConnectionFunctionConfig"]
    assert config["Runtime"] == "cloudfront-js-2.0"
    assert config["KeyValueStoreAssociations"] == [{"KeyValueStoreARN": {"Fn::GetAtt": ["RevokedSerialsStore", "Arn"]}}]
    result = subprocess.run(
        [sys.executable, str(REPO / "utils" / "embed-connection-function.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


LONGEST_REGIONS = ["ap-southeast-5", "ap-northeast-3", "ap-southeast-7", "eusc-de-east-1"]


def _longest(parameter: str) -> str:
    spec = EDGE["Parameters"][parameter]
    match = re.fullmatch(r"\^\[a-z\]\[a-z0-9-\]\{(\d+),(\d+)\}\$", spec["AllowedPattern"])
    assert match and spec["MaxLength"] == 1 + int(match.group(2)), spec
    return "p" * spec["MaxLength"]


@pytest.mark.parametrize(
    ("resource", "name_property", "pattern"),
    [
        ("RevokedSerialsStore", "Name", r"[a-zA-Z0-9-_]{1,64}"),
        ("RevocationCheckFunction", "Name", r"[a-zA-Z0-9-_]{1,64}"),
        ("EdgeRole", "RoleName", r"[\w+=,.@-]{1,64}"),
    ],
)
@pytest.mark.parametrize("region", LONGEST_REGIONS)
def test_account_global_names_hold_the_region_and_fit(
    resource: str, name_property: str, pattern: str, region: str
) -> None:
    template = EDGE["Resources"][resource]["Properties"][name_property]["Fn::Sub"]
    assert "${AWS::Region}" in template, "account-global names: a stack per region would collide"
    values = {
        "CaProjectName": _longest("CaProjectName"),
        "CaEnvironmentName": _longest("CaEnvironmentName"),
        "AWS::Region": region,
    }
    name = re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], template)
    assert re.fullmatch(pattern, name), (name, len(name))


def test_the_edge_role_name_matches_the_ca_functions_assume_role_pattern() -> None:
    """The CA functions may assume ${ProjectName}-${EnvironmentName}-edge-* (interfaces of issue 10)."""
    name = EDGE["Resources"]["EdgeRole"]["Properties"]["RoleName"]["Fn::Sub"]
    assert name == "${CaProjectName}-${CaEnvironmentName}-edge-${AWS::Region}"


# Trust -------------------------------------------------------------------------------------------

CA_ROLE = f"arn:aws:iam::{CA_ACCOUNT}:role/kmsca-dev-SyncKvsFunctionRole-ABC"
EXTERNAL_ID = "0f4c1c9e-7d2b-4a51-9a3e-2d8f1b6c7e90"


def trust_policy() -> dict[str, Any]:
    document = EDGE["Resources"]["EdgeRole"]["Properties"]["AssumeRolePolicyDocument"]
    params = {"CaRoleArns": [CA_ROLE], "ExternalId": EXTERNAL_ID, "CaAccountId": CA_ACCOUNT}

    def sub(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return params[value["Ref"]]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value

    return sub(document)


def may_assume(caller_arn: str, principal_arn: str, account: str, external_id: str | None) -> bool:
    keys = {"aws:PrincipalArn": (principal_arn,), "aws:PrincipalAccount": (account,)}
    if external_id is not None:
        keys["sts:ExternalId"] = (external_id,)
    context = RequestContext("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/kmsca-dev-edge-{REGION}", keys)
    return evaluate_trust(
        trust_policy(), caller_arn=caller_arn, principal_arn=principal_arn, account=account, context=context
    ).allowed


def test_the_trust_names_the_ca_roles_with_the_external_id() -> None:
    (statement,) = EDGE["Resources"]["EdgeRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Ref": "CaRoleArns"}}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"]["StringEquals"] == {
        "sts:ExternalId": {"Ref": "ExternalId"},
        "aws:PrincipalAccount": {"Ref": "CaAccountId"},
    }
    session = f"arn:aws:sts::{CA_ACCOUNT}:assumed-role/kmsca-dev-SyncKvsFunctionRole-ABC/fn"
    assert may_assume(session, CA_ROLE, CA_ACCOUNT, EXTERNAL_ID)


@pytest.mark.parametrize(
    ("caller", "principal", "account", "external_id"),
    [
        (CA_ROLE, CA_ROLE, CA_ACCOUNT, None),  # no external id
        (CA_ROLE, CA_ROLE, CA_ACCOUNT, "0f4c1c9e-wrong"),  # wrong external id
        (
            f"arn:aws:iam::{CA_ACCOUNT}:role/another",
            f"arn:aws:iam::{CA_ACCOUNT}:role/another",
            CA_ACCOUNT,
            EXTERNAL_ID,
        ),  # another role of the CA account
        (
            "arn:aws:iam::999999999999:role/kmsca-dev-SyncKvsFunctionRole-ABC",
            "arn:aws:iam::999999999999:role/kmsca-dev-SyncKvsFunctionRole-ABC",
            "999999999999",
            EXTERNAL_ID,
        ),  # the same role name in another account
    ],
)
def test_the_trust_refuses_anyone_else(caller: str, principal: str, account: str, external_id: str | None) -> None:
    assert not may_assume(caller, principal, account, external_id)


# Permissions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("needed", NEEDS, ids=lambda c: f"{c[0]} {c[1]}")
def test_each_call_the_ca_makes_is_allowed(needed: Call) -> None:
    assert allowed(*needed), needed


@pytest.mark.parametrize("refused", REFUSED, ids=lambda c: f"{c[0]} {c[1]}")
def test_calls_outside_the_need_are_refused(refused: Call) -> None:
    assert not allowed(*refused), refused


def test_every_action_of_every_statement_is_used() -> None:
    for statement in role_statements():
        for action in as_list(statement["Action"]):
            assert any(fnmatchcase(n[0], action) and statement_allows(statement, *n) for n in NEEDS), (
                f"statement {statement.get('Sid')} allows {action}, which the CA never calls through the edge role"
            )


def test_only_acm_list_certificates_is_granted_on_every_resource() -> None:
    for statement in role_statements():
        if "*" in as_list(statement["Resource"]):
            assert as_list(statement["Action"]) == ["acm:ListCertificates"], statement
