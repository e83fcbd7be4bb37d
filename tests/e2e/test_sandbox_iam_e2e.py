"""Every function of template.yaml through its main paths in the sandbox, with IAM enforced.

Each function runs with the credentials of the role SAM generates from its ``Policies``, the
operator with the template's managed policies, and every request is authorised as AWS would
(utils/sandbox/iam_*.py). A statement missing from template.yaml fails here, as it would fail
a deploy; the denial tests show the roles are not wider than their functions need.
Global secondary indexes lag their table (as DynamoDB's do), so index readers are tested as
they run on AWS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from certcli.function_url import call_function_url
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kmsca.serial import serial_to_hex

from tests.support.csr import csr_pem, make_csr
from tests.support.wait import wait_until
from utils.sandbox.server import FunctionError, Sandbox

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
#: Seconds the sandbox's indexes lag their table in these tests.
INDEX_LAG = 1.0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(REPO, stack_name="iam-e2e", gsi_lag_seconds=INDEX_LAG) as running:
        yield running


def operator_client(sandbox: Sandbox, service: str, region: str | None = None) -> Any:
    """A client with the operator's credentials (RequesterPolicy and RevokerPolicy, nothing else)."""
    env = sandbox.env()
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=region or sandbox.region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def role_client(sandbox: Sandbox, logical_id: str, service: str, region: str | None = None) -> Any:
    """A client with a function's own role session (what its code holds at run time)."""
    credentials = sandbox.functions[logical_id].credentials
    return boto3.client(
        service,
        endpoint_url=sandbox.endpoint_url,
        region_name=region or sandbox.region,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    )


#: Functions the operators call through their function URL (AWS_IAM, SigV4): direct Invoke is the administrators'.
URL_OUTPUTS = {"IssueFunction": "IssueFunctionUrl", "RevokeFunction": "RevokeFunctionUrl"}


def invoke_as_operator(sandbox: Sandbox, logical_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    if logical_id in URL_OUTPUTS:
        url = sandbox.outputs[URL_OUTPUTS[logical_id]]
        return call_function_url(operator_client(sandbox, "lambda"), url, payload, logical_id)
    response = operator_client(sandbox, "lambda").invoke(
        FunctionName=sandbox.function_names[logical_id], Payload=json.dumps(payload).encode()
    )
    body = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise FunctionError(body)
    return dict(body)


def indexes_caught_up(sandbox: Sandbox) -> bool:
    """Every global secondary index of the CA table shows the table's items as they are now (the
    sandbox lags them by INDEX_LAG; the scheduled jobs read them): compared on the table key, the
    index keys and the projected attributes."""
    dynamodb, table = sandbox.client("dynamodb"), sandbox.outputs["CaTableName"]

    def scan(**kwargs: Any) -> list[dict[str, Any]]:
        pages = dynamodb.get_paginator("scan").paginate(TableName=table, **kwargs)
        return [item for page in pages for item in page["Items"]]

    items = scan()
    for index in dynamodb.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"]:
        keys = [key["AttributeName"] for key in index["KeySchema"]]
        attributes = ["pk", *keys, *index["Projection"].get("NonKeyAttributes", [])]

        def projected(item: dict[str, Any], attributes: list[str] = attributes) -> str:
            return json.dumps({name: item[name] for name in attributes if name in item}, sort_keys=True)

        expected = sorted(projected(item) for item in items if all(key in item for key in keys))
        if sorted(projected(item) for item in scan(IndexName=index["IndexName"])) != expected:
            return False
    return True


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def crl_serials(sandbox: Sandbox, key: str) -> set[str]:
    body = sandbox.client("s3").get_object(Bucket=sandbox.outputs["PublicBucketName"], Key=key)["Body"].read()
    return {serial_to_hex(entry.serial_number) for entry in x509.load_der_x509_crl(body)}


@pytest.fixture(scope="module")
def issued(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """One certificate of each profile, requested by the operator."""
    key = ec.generate_private_key(ec.SECP256R1())
    client = invoke_as_operator(sandbox, "IssueFunction", {"csr": csr_pem(make_csr(key, "iam-client"))})
    server_csr = make_csr(key, "api.iam.example", sans=[x509.DNSName("api.iam.example")])
    server = invoke_as_operator(sandbox, "IssueFunction", {"csr": csr_pem(server_csr), "profile": "server"})
    origin = invoke_as_operator(
        sandbox,
        "IssueFunction",
        {
            "profile": "cloudfront-origin",
            "subject": {"common_name": "origin.iam.example"},
            "sans": [{"type": "dns", "value": "origin.iam.example"}],
            "lifetime_days": 5,  # inside the rotation window: the next rotation run renews it
        },
    )
    return {"client": client, "server": server, "origin": origin}


def test_each_profile_is_issued_as_the_operator(issued: dict[str, dict[str, Any]]) -> None:
    assert {name: result["profile"] for name, result in issued.items()} == {
        "client": "client",
        "server": "server",
        "origin": "cloudfront-origin",
    }
    assert issued["origin"]["acm_certificate_arn"].startswith("arn:aws:acm:us-east-1:")


def test_revocation_reaches_the_crl_and_the_key_value_store_through_lagging_indexes(
    sandbox: Sandbox, issued: dict[str, dict[str, Any]]
) -> None:
    serial = issued["client"]["serial_number"]
    revoked = invoke_as_operator(sandbox, "RevokeFunction", {"serial_number": serial, "reason": "keyCompromise"})
    assert revoked["already_revoked"] is False
    # the stream-triggered CRL lists the revocation although RevokedByCa lags by INDEX_LAG
    wait_until(
        lambda: serial in crl_serials(sandbox, "issuing.crl"), timeout=20, what="the issuing CRL lists the revocation"
    )
    store = sandbox.outputs["RevokedSerialsStoreArn"]
    wait_until(lambda: serial in sandbox.kvs.items(store), timeout=20, what="the KeyValueStore has the serial")


def test_scheduled_crl_publication_and_reconcile_run_with_their_roles(
    sandbox: Sandbox, issued: dict[str, dict[str, Any]]
) -> None:
    wait_until(lambda: indexes_caught_up(sandbox), timeout=20, what="the table's indexes caught up")
    sandbox.trigger_schedule("PublishCrlFunction").raise_for_error()
    assert issued["client"]["serial_number"] in crl_serials(sandbox, "issuing.crl")
    sandbox.trigger_schedule("SyncKvsFunction").raise_for_error()
    assert issued["client"]["serial_number"] in sandbox.kvs.items(sandbox.outputs["RevokedSerialsStoreArn"])


def test_rotation_reimports_into_the_same_arn(sandbox: Sandbox, issued: dict[str, dict[str, Any]]) -> None:
    arn = issued["origin"]["acm_certificate_arn"]
    wait_until(lambda: indexes_caught_up(sandbox), timeout=20, what="the table's indexes caught up")
    sandbox.trigger_schedule("RotateAcmFunction").raise_for_error()
    acm = sandbox.client("acm", "us-east-1")
    served = x509.load_pem_x509_certificate(acm.get_certificate(CertificateArn=arn)["Certificate"].encode())
    assert serial_to_hex(served.serial_number) != issued["origin"]["serial_number"]
    assert served.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "origin.iam.example"


def test_bootstrap_update_and_delete_run_with_the_bootstrap_role(sandbox: Sandbox) -> None:
    before = sandbox.physical["CaHierarchy"]
    updated = sandbox.custom_resource_request("CaHierarchy", "Update")
    assert updated.ref == before.ref  # the same hierarchy: bootstrap never replaces a CA
    deleted = sandbox.custom_resource_request("CaHierarchy", "Delete")
    assert deleted.ref == before.ref
    ca_bundle = sandbox.client("s3").get_object(Bucket=sandbox.outputs["PublicBucketName"], Key="ca-bundle.pem")
    assert b"BEGIN CERTIFICATE" in ca_bundle["Body"].read()  # delete keeps the CA and its artefacts


def test_no_function_was_denied_anything(sandbox: Sandbox, issued: dict[str, dict[str, Any]]) -> None:
    for function in sandbox.functions.values():
        denied = [line for line in function.log_lines if "AccessDenied" in line or "not authorized" in line]
        assert denied == [], f"{function.logical_id}: {denied[:3]}"


# -- least privilege: what a function's own credentials may not do --------------------------------


def test_the_issue_function_cannot_sign_with_the_root_key(sandbox: Sandbox) -> None:
    kms = role_client(sandbox, "IssueFunction", "kms")
    root_key = sandbox.physical["RootCaKey"].attrs["Arn"]
    sign = {"Message": b"\0" * 32, "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_384"}
    assert error_code(lambda: kms.sign(KeyId=root_key, **sign)) == "AccessDeniedException"
    issuing_key = sandbox.physical["IssuingCaKey"].attrs["Arn"]
    signed = kms.sign(KeyId=issuing_key, **{**sign, "SigningAlgorithm": "ECDSA_SHA_256"})
    assert signed["Signature"]  # its own key works: the denial above is the policy, not the client


def test_the_key_value_store_sync_cannot_write_a_certificate(sandbox: Sandbox) -> None:
    dynamodb = role_client(sandbox, "SyncKvsFunction", "dynamodb")
    item = {"pk": {"S": "CERT#00ff"}, "serial_number": {"S": "00ff"}, "status": {"S": "issued"}}
    table = sandbox.outputs["CaTableName"]
    assert error_code(lambda: dynamodb.put_item(TableName=table, Item=item)) == "AccessDeniedException"


def test_the_revoke_function_cannot_touch_ca_records(sandbox: Sandbox) -> None:
    dynamodb = role_client(sandbox, "RevokeFunction", "dynamodb")
    table = sandbox.outputs["CaTableName"]
    code = error_code(
        lambda: dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": "CA#issuing"}},
            UpdateExpression="SET x = :x",
            ExpressionAttributeValues={":x": {"S": "1"}},
        )
    )
    assert code == "AccessDeniedException"


def test_the_operator_may_not_invoke_the_internal_functions(sandbox: Sandbox) -> None:
    lam = operator_client(sandbox, "lambda")
    for logical_id in ("PublishCrlFunction", "RotateAcmFunction", "BootstrapFunction"):
        name = sandbox.function_names[logical_id]
        assert error_code(lambda name=name: lam.invoke(FunctionName=name, Payload=b"{}")) == "AccessDeniedException"


def test_the_operator_may_not_read_the_inventory(sandbox: Sandbox) -> None:
    dynamodb = operator_client(sandbox, "dynamodb")
    table = sandbox.outputs["CaTableName"]
    assert error_code(lambda: dynamodb.scan(TableName=table, Limit=1)) == "AccessDeniedException"


def test_unknown_credentials_are_refused(sandbox: Sandbox) -> None:
    lam = boto3.client(
        "lambda",
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id="AKIAUNKNOWNKEY000000",
        aws_secret_access_key="x",
    )
    name = sandbox.function_names["IssueFunction"]
    assert error_code(lambda: lam.invoke(FunctionName=name, Payload=b"{}")) == "UnrecognizedClientException"


def test_a_wrong_region_finds_neither_the_stack_nor_the_functions(sandbox: Sandbox) -> None:
    lam = operator_client(sandbox, "lambda", region="us-west-2")
    name = sandbox.function_names["IssueFunction"]
    assert error_code(lambda: lam.invoke(FunctionName=name, Payload=b"{}")) == "ResourceNotFoundException"
    cfn = operator_client(sandbox, "cloudformation", region="us-west-2")
    assert error_code(lambda: cfn.describe_stacks(StackName=sandbox.stack_name)) == "ValidationError"
    dynamodb = sandbox.client("dynamodb", "us-west-2")
    table = sandbox.outputs["CaTableName"]
    assert error_code(lambda: dynamodb.describe_table(TableName=table)) == "ResourceNotFoundException"
