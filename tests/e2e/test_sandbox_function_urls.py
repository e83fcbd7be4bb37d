"""The issue and revoke function URLs (AWS_IAM) in the sandbox: SigV4 verified, identity and
resource-based policies evaluated as Lambda does, the per-caller issuance policy applied by the
real handlers, and the CLIs calling the URLs.

Two workload accounts: 222222222222 is named by the stack's CallerAccountIds, 333333333333 is not.
Every principal is an IAM user made with ``sandbox.create_caller`` in its account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec
from kmsca.policy_store import DynamoDbPolicyStore
from kmsca.table_keys import policy_key

from tests.support.csr import csr_pem, make_csr
from utils.sandbox.identities import Principal
from utils.sandbox.server import Sandbox

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = "222222222222"
STRANGER = "333333333333"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        REPO, stack_name="urls", parameter_overrides={"CallerAccountIds": WORKLOAD}, workload_accounts=(WORKLOAD, STRANGER)
    ) as running:
        yield running


def url_caller_policy(sandbox: Sandbox) -> dict[str, Any]:
    """What RequesterPolicy and RevokerPolicy grant on the functions, as one inline policy."""
    arns = [sandbox.functions[f].arn for f in ("IssueFunction", "RevokeFunction")]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl", "Resource": arns,
             "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}},
            {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arns,
             "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}},
        ],
    }  # fmt: skip


def call(sandbox: Sandbox, who: Principal, output: str, payload: Any, tamper: bool = False) -> tuple[int, Any]:
    """POST ``payload`` to the stack output's URL signed as ``who``; (status, decoded body)."""
    url = sandbox.outputs[output]
    body = json.dumps(payload).encode()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(who.access_key_id, who.secret_access_key), "lambda", sandbox.region).add_auth(request)
    headers = dict(request.headers.items())
    if tamper:
        headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    return send(url, body, headers)


def send(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"), timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def new_csr(common_name: str | None, *dns: str) -> str:
    from cryptography import x509

    sans = [x509.DNSName(d) for d in dns] or None
    return csr_pem(make_csr(ec.generate_private_key(ec.SECP256R1()), common_name, sans))


def store_policy(sandbox: Sandbox, document: dict[str, Any] | None) -> None:
    """Replace the stored issuance policy (None: delete it), as an administrator."""
    client = sandbox.client("dynamodb")
    table = sandbox.outputs["CaTableName"]
    if document is None:
        client.delete_item(TableName=table, Key={"pk": {"S": policy_key()}})
        return
    store = DynamoDbPolicyStore(client, table)
    current = store.load()
    store.save(json.dumps(document), current.revision if current else None, "test", datetime.now(UTC))


def certificate_count(sandbox: Sandbox) -> int:
    pages = sandbox.client("dynamodb").get_paginator("scan").paginate(
        TableName=sandbox.outputs["CaTableName"],
        FilterExpression="begins_with(pk, :cert)",
        ExpressionAttributeValues={":cert": {"S": "CERT#"}},
        Select="COUNT",
    )
    return sum(page["Count"] for page in pages)


def requested_by(sandbox: Sandbox, serial: str) -> str | None:
    item = sandbox.client("dynamodb").get_item(
        TableName=sandbox.outputs["CaTableName"], Key={"pk": {"S": f"CERT#{serial}"}}, ConsistentRead=True
    )["Item"]
    return item.get("requested_by", {}).get("S")


def rule(name: str, principals: dict[str, Any], suffix: str, may_revoke: str = "own") -> dict[str, Any]:
    return {"name": name, "principals": principals, "profiles": ["client", "server"], "dns_suffixes": [suffix],
            "max_lifetime_days": 30, "may_revoke": may_revoke}  # fmt: skip


@pytest.fixture(scope="module")
def principals(sandbox: Sandbox) -> dict[str, Principal]:
    policy = url_caller_policy(sandbox)
    nothing = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}
    ca = sandbox.ca_account_id
    return {
        "team": sandbox.create_caller(ca, "team-a", policy),
        "other-team": sandbox.create_caller(ca, "team-b", policy),
        "no-permission": sandbox.create_caller(ca, "no-permission", nothing),
        "workload": sandbox.create_caller(WORKLOAD, "workload-ci", policy),
        "stranger": sandbox.create_caller(STRANGER, "stranger-ci", policy),
    }


def test_the_outputs_give_the_sandbox_urls(sandbox: Sandbox) -> None:
    for output in ("IssueFunctionUrl", "RevokeFunctionUrl"):
        assert sandbox.outputs[output].startswith(f"{sandbox.endpoint_url}/__lambda_url__/")


def test_the_operator_of_the_ca_account_gets_the_global_limits_and_is_recorded(sandbox: Sandbox) -> None:
    store_policy(sandbox, None)
    assert sandbox.operator is not None
    status, body = call(sandbox, sandbox.operator, "IssueFunctionUrl", {"csr": new_csr("anything.example.net")})
    assert status == 200, body
    assert requested_by(sandbox, body["serial_number"]) == sandbox.operator.arn


def test_a_label_is_refused_through_the_url(sandbox: Sandbox) -> None:
    assert sandbox.operator is not None
    payload = {"csr": new_csr("x"), "requested_by": "someone-else"}
    status, body = call(sandbox, sandbox.operator, "IssueFunctionUrl", payload)
    assert (status, body["error"]) == (400, "InvalidRequest")


@pytest.mark.parametrize("how", ["tampered", "unsigned", "unknown key"])
def test_a_bad_signature_is_403_and_nothing_runs(sandbox: Sandbox, how: str) -> None:
    assert sandbox.operator is not None
    before = certificate_count(sandbox)
    payload = {"csr": new_csr("sig")}
    if how == "tampered":
        status, body = call(sandbox, sandbox.operator, "IssueFunctionUrl", payload, tamper=True)
    elif how == "unsigned":
        status, body = send(sandbox.outputs["IssueFunctionUrl"], json.dumps(payload).encode(), {})
    else:
        ghost = Principal("ghost", "arn:aws:iam::123456789012:user/ghost", "AKIAGHOSTGHOSTGHOST1", "x" * 40)
        status, body = call(sandbox, ghost, "IssueFunctionUrl", payload)
    assert (status, body) == (403, {"Message": "Forbidden"})
    assert certificate_count(sandbox) == before


def test_a_principal_without_the_invoke_permissions_is_403(sandbox: Sandbox, principals: dict[str, Principal]) -> None:
    status, body = call(sandbox, principals["no-permission"], "IssueFunctionUrl", {"csr": new_csr("x")})
    assert (status, body) == (403, {"Message": "Forbidden"})


def test_an_account_the_resource_policy_does_not_name_is_403(sandbox: Sandbox, principals: dict[str, Principal]) -> None:
    status, body = call(sandbox, principals["stranger"], "IssueFunctionUrl", {"csr": new_csr("x")})
    assert (status, body) == (403, {"Message": "Forbidden"})


def test_the_operators_no_longer_invoke_the_issue_function_directly(sandbox: Sandbox) -> None:
    env = sandbox.env()
    client = boto3.client(
        "lambda", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=sandbox.region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip
    with pytest.raises(ClientError) as denied:
        client.invoke(FunctionName=sandbox.function_names["IssueFunction"], Payload=b"{}")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


def test_without_a_policy_another_account_gets_nothing(sandbox: Sandbox, principals: dict[str, Principal]) -> None:
    store_policy(sandbox, None)
    before = certificate_count(sandbox)
    status, body = call(sandbox, principals["workload"], "IssueFunctionUrl", {"csr": new_csr("w.example.com")})
    assert (status, body["error"]) == (403, "NotAuthorized")
    assert "not the CA's account" in body["message"]
    assert certificate_count(sandbox) == before


@pytest.mark.parametrize("who", ["team", "workload"])
def test_a_caller_is_refused_a_name_outside_its_rule_and_nothing_is_stored(
    sandbox: Sandbox, principals: dict[str, Principal], who: str
) -> None:
    store_policy(sandbox, {"version": 1, "rules": [
        rule("team-a", {"arns": [principals["team"].arn]}, ".team.example.com"),
        rule("workload", {"accounts": [WORKLOAD]}, ".workload.example.com"),
    ]})  # fmt: skip
    suffix = ".team.example.com" if who == "team" else ".workload.example.com"
    payload = {"csr": new_csr(None, "api" + suffix), "lifetime_days": 30}
    status, body = call(sandbox, principals[who], "IssueFunctionUrl", payload)
    assert status == 200, body
    assert requested_by(sandbox, body["serial_number"]) == principals[who].arn
    before = certificate_count(sandbox)
    for refused in ({"csr": new_csr(None, "evil.example.net"), "lifetime_days": 30},
                    {**payload, "sans": [{"type": "dns", "value": "evil-example.com"}]},
                    {**payload, "subject": {"common_name": "admin"}},
                    {"profile": "cloudfront-origin", "sans": [{"type": "dns", "value": "o" + suffix}]},
                    {**payload, "lifetime_days": 31}):  # fmt: skip
        status, body = call(sandbox, principals[who], "IssueFunctionUrl", refused)
        assert (status, body["error"]) == (403, "NotAuthorized"), body
        assert f"rule {'team-a' if who == 'team' else 'workload'!r}" in body["message"]
    assert certificate_count(sandbox) == before


def test_own_revokes_only_the_callers_certificates(sandbox: Sandbox, principals: dict[str, Principal]) -> None:
    store_policy(sandbox, {"version": 1, "rules": [
        rule("team-a", {"arns": [principals["team"].arn]}, ".shared.example.com"),
        rule("team-b", {"arns": [principals["other-team"].arn]}, ".shared.example.com"),
    ]})  # fmt: skip
    payload = {"csr": new_csr(None, "a.shared.example.com"), "lifetime_days": 7}
    status, issued = call(sandbox, principals["team"], "IssueFunctionUrl", payload)
    assert status == 200, issued
    serial = issued["serial_number"]
    takeover = {"csr": new_csr(None), "renews": serial, "lifetime_days": 7, "revoke_renewed_after_hours": 0}
    status, body = call(sandbox, principals["other-team"], "IssueFunctionUrl", takeover)
    assert (status, body["error"]) == (403, "NotAuthorized"), body
    assert f"renewing certificate {serial} supersedes it" in body["message"]
    status, body = call(sandbox, principals["other-team"], "RevokeFunctionUrl", {"serial_number": serial})
    assert (status, body["error"]) == (403, "NotAuthorized")
    assert "not requested by this caller" in body["message"]
    status, body = call(sandbox, principals["team"], "RevokeFunctionUrl", {"serial_number": serial})
    assert status == 200 and body["already_revoked"] is False, body


def test_an_unreadable_stored_policy_fails_closed(sandbox: Sandbox, principals: dict[str, Principal]) -> None:
    sandbox.client("dynamodb").put_item(
        TableName=sandbox.outputs["CaTableName"],
        Item={"pk": {"S": policy_key()}, "document": {"S": "{not json"}, "revision": {"N": "99"}},
    )
    status, body = call(sandbox, principals["team"], "IssueFunctionUrl", {"csr": new_csr(None, "a.team.example.com")})
    assert (status, body["error"]) == (500, "InvalidIssuancePolicy")
    store_policy(sandbox, None)


def test_the_cli_and_the_policy_tool_work_through_the_urls(sandbox: Sandbox, tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KMSCA_"))}
    env = {**clean, **sandbox.env(), "KMSCA_STACK_NAME": sandbox.stack_name}
    document = tmp_path / "policy.json"
    store_policy(sandbox, None)
    assert sandbox.operator is not None
    document.write_text(json.dumps({"version": 1, "rules": [
        rule("operator", {"arns": [sandbox.operator.arn]}, ".ops.example.com", may_revoke="any"),
    ]}))  # fmt: skip

    def tool(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(REPO / "utils" / args[0]), *args[1:]], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)  # fmt: skip

    put = tool("issuance-policy.py", "put", str(document))
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["revision"] == 1
    got = tool("issuance-policy.py", "get")
    assert got.returncode == 0 and json.loads(got.stdout) == json.loads(document.read_text()), got.stderr
    assert "revision 1, updated" in got.stderr and sandbox.operator.arn in got.stderr
    stale = tool("issuance-policy.py", "put", str(document), "--if-revision", "0")
    assert stale.returncode == 1 and "PolicyRevisionConflict" in stale.stderr
    refused = tool("server-cert.py", "evil.example.net", "--san", "dns:evil.example.net", "--lifetime-days", "30")
    assert refused.returncode == 2 and "NotAuthorized" in refused.stderr, refused.stderr
    issued = tool("server-cert.py", "api.ops.example.com", "--san", "dns:api.ops.example.com", "--lifetime-days", "30", "--json")
    assert issued.returncode == 0, issued.stderr
    info = json.loads(issued.stdout)
    assert info["function_url"] == sandbox.outputs["IssueFunctionUrl"]
    assert info["function_name"] == sandbox.function_names["IssueFunction"]
    revoked = tool("revoke-cert.py", "--serial", info["serial_number"], "--json")
    assert revoked.returncode == 0, revoked.stderr
    store_policy(sandbox, None)
