"""template.yaml: lint-clean, least privilege on the CA keys, the outputs the tools rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, TEMPLATE

KEY_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
             "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"]


def _functions() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in function["Properties"].get("Policies", []):
        if "Fn::If" in policy:  # a conditional policy: check the branch that is not AWS::NoValue
            policy = next(branch for branch in policy["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"})
        assert isinstance(policy, dict) and "Statement" in policy, "policies are inline statements only"
        found.extend(policy["Statement"])
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants(action: str, key_logical_id: str) -> set[str]:
    holders = set()
    for name, function in _functions().items():
        for statement in _statements(function):
            resources = _as_list(statement["Resource"])
            targets = [{"Fn::GetAtt": f"{key_logical_id}.Arn"}, {"Fn::GetAtt": [key_logical_id, "Arn"]}]
            if action in _as_list(statement["Action"]) and any(t in resources for t in targets):
                holders.add(name)
    return holders


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(REPO / "template.yaml")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_issuance_rotation_and_crl_publication_sign_with_the_issuing_key() -> None:
    assert _grants("kms:Sign", "IssuingCaKey") == {"IssueFunction", "RotateAcmFunction", "PublishCrlFunction"}


def test_only_bootstrap_and_crl_publication_sign_with_the_root_key() -> None:
    assert _grants("kms:Sign", "RootCaKey") == {"BootstrapFunction", "PublishCrlFunction"}


def test_revocations_reach_crl_publication_through_the_filtered_stream() -> None:
    events = TEMPLATE["Resources"]["PublishCrlFunction"]["Properties"]["Events"]
    stream = events["Revocations"]["Properties"]
    assert stream["Stream"] in ({"Fn::GetAtt": "CaTable.StreamArn"}, {"Fn::GetAtt": ["CaTable", "StreamArn"]})
    pattern = json.loads(stream["FilterCriteria"]["Filters"][0]["Pattern"])
    assert pattern["dynamodb"]["NewImage"]["status"] == {"S": ["revoked"]}
    assert events["Hourly"]["Type"] == "ScheduleV2"


def test_no_wildcard_actions_or_resources_in_function_policies() -> None:
    for name, function in _functions().items():
        for statement in _statements(function):
            for action in _as_list(statement["Action"]):
                assert "*" not in action, f"{name} grants {action}"
            assert "*" not in _as_list(statement["Resource"]), f"{name} grants on every resource"


@pytest.mark.parametrize("key", ["RootCaKey", "IssuingCaKey"])
def test_ca_key_policies_name_their_actions(key: str) -> None:
    resource = TEMPLATE["Resources"][key]
    assert resource["DeletionPolicy"] == "Retain" and resource["UpdateReplacePolicy"] == "Retain"
    assert resource["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
        assert "kms:*" not in _as_list(statement["Action"])
        assert all("*" not in action for action in _as_list(statement["Action"]))


def test_key_spec_parameters() -> None:
    params = TEMPLATE["Parameters"]
    assert params["RootCaKeySpec"]["AllowedValues"] == KEY_SPECS
    assert params["IssuingCaKeySpec"]["AllowedValues"] == KEY_SPECS
    assert params["RootCaKeySpec"]["Default"] == "ECC_NIST_P384"
    assert params["IssuingCaKeySpec"]["Default"] == "ECC_NIST_P256"
    assert params["MaxLifetimeDays"]["Default"] == 365


def test_outputs_the_tools_rely_on() -> None:
    assert {"PublicBucketName", "InternalBucketName", "IssueFunctionName", "IssueFunctionArn",
            "CaBundleS3Uri"} <= set(TEMPLATE["Outputs"])


def test_the_inventory_table_has_the_sparse_revoked_index() -> None:
    props = TEMPLATE["Resources"]["CaTable"]["Properties"]
    index = next(i for i in props["GlobalSecondaryIndexes"] if i["IndexName"] == "RevokedByCa")
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["crl_entry"]}
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["revoked_ca", "not_after"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def _holders(action: str) -> set[str]:
    return {name for name, f in _functions().items() for st in _statements(f) if action in _as_list(st["Action"])}


def test_acm_import_is_limited_to_issuance_and_rotation() -> None:
    assert _holders("acm:ImportCertificate") == {"IssueFunction", "RotateAcmFunction"}
    assert _holders("acm:DeleteCertificate") == {"IssueFunction"}


def test_only_the_sync_function_writes_the_key_value_store() -> None:
    assert _holders("cloudfront-keyvaluestore:UpdateKeys") == {"SyncKvsFunction"}


def test_viewer_mtls_resources_are_behind_one_parameter() -> None:
    for name in ("RevokedSerialsStore", "RevocationCheckFunction", "SyncKvsFunction", "KvsSyncFailedAlarm"):
        assert TEMPLATE["Resources"][name]["Condition"] == "ViewerMtls"
    assert TEMPLATE["Conditions"]["ViewerMtls"] == {"Fn::Equals": [{"Ref": "EnableViewerMtls"}, "true"]}


def test_the_template_carries_the_connection_function_code_unchanged() -> None:
    code = TEMPLATE["Resources"]["RevocationCheckFunction"]["Properties"]["ConnectionFunctionCode"]
    source = (REPO / "functions" / "connection" / "connection.js").read_text()
    assert code == source, "run: python utils/embed-connection-function.py"
    assert len(code.encode()) < 10 * 1024
    config = TEMPLATE["Resources"]["RevocationCheckFunction"]["Properties"]["ConnectionFunctionConfig"]
    assert config["Runtime"] == "cloudfront-js-2.0"
