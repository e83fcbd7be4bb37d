"""``issuance-policy.py`` / ``kmsca-issuance-policy`` (``certcli.policy``) without the sandbox (the
sandbox test of get/put is in test_sandbox_function_urls.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import certcli
import pytest
from botocore.stub import Stubber
from certcli import policy

DOCUMENT = {"version": 1, "rules": [
    {"name": "web", "principals": {"accounts": ["222222222222"]}, "profiles": ["client", "server"],
     "dns_suffixes": [".web.example.com"], "max_lifetime_days": 30, "may_revoke": "own"},
]}  # fmt: skip


def _file(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_check_validates_with_the_ca_core(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert policy.policy_main(["check", str(_file(tmp_path, DOCUMENT))], environ={}) == 0
    assert capsys.readouterr().out == "valid: 1 rule(s): web\n"


def test_check_refuses_an_invalid_document_with_the_cores_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert policy.policy_main(["check", str(_file(tmp_path, {"version": 2, "rules": []}))], environ={}) == 1
    assert capsys.readouterr().err.startswith("error: InvalidIssuancePolicy: ")


def test_check_refuses_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert policy.policy_main(["check", str(tmp_path / "missing.json")], environ={}) == 1
    assert capsys.readouterr().err.startswith(f"error: InvalidArgument: cannot read {tmp_path / 'missing.json'}: ")


@pytest.mark.parametrize("version", [(3, 9, 18), (3, 10, 0)])
def test_a_python_older_than_the_cores_is_refused_with_its_version(version: tuple[int, int, int]) -> None:
    with pytest.raises(certcli.Refused) as caught:
        policy.check_python(version)
    assert caught.value.code == "UnsupportedPython"
    assert caught.value.message.endswith(f"needs Python 3.11+; this is Python {'.'.join(map(str, version))}")


def test_get_without_a_stored_policy_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dynamodb = boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(dynamodb)
    stubber.add_response(
        "get_item", {}, {"TableName": "ca-table", "Key": {"pk": {"S": "POLICY#issuance"}}, "ConsistentRead": True}
    )
    clients = certcli.AwsClients(region="eu-west-1")
    clients._clients["dynamodb"] = dynamodb
    monkeypatch.setattr(policy, "clients_for", lambda args: clients)
    with stubber:
        code = policy.policy_main(["get", "--table-name", "ca-table"], environ={})
    stubber.assert_no_pending_responses()
    assert code == 1
    assert capsys.readouterr().err == (
        "error: NoPolicy: no issuance policy is stored (CA-account callers get the CA's global limits)\n"
    )


def test_the_table_name_comes_from_the_environment_before_the_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dynamodb = boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(dynamodb)
    stubber.add_response(
        "get_item",
        {"Item": {"pk": {"S": "POLICY#issuance"}, "document": {"S": json.dumps(DOCUMENT)}, "revision": {"N": "3"},
                  "updated_at": {"S": "2026-11-20T10:00:00Z"}, "updated_by": {"S": "arn:aws:iam::1:user/a"}}},
        {"TableName": "env-table", "Key": {"pk": {"S": "POLICY#issuance"}}, "ConsistentRead": True},
    )  # fmt: skip
    clients = certcli.AwsClients(region="eu-west-1")
    clients._clients["dynamodb"] = dynamodb
    monkeypatch.setattr(policy, "clients_for", lambda args: clients)
    with stubber:
        code = policy.policy_main(["get"], environ={policy.ENV_TABLE_NAME: "env-table"})
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out) == DOCUMENT
    assert captured.err == "revision 3, updated 2026-11-20T10:00:00Z by arn:aws:iam::1:user/a\n"
