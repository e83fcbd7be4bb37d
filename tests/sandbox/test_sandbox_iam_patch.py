"""The sandbox's IAM enforcement: what each API call authorises (request_contexts), and the
enforcer hooked into moto in server mode, end to end through boto3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from utils.sandbox.iam_patch import (
    AccessDenied,
    IamEnforcer,
    UnknownOperation,
    deny_response,
    patch_moto_iam,
    request_contexts,
    unpatch_moto_iam,
)
from utils.sandbox.iam_policy import evaluate

ACCOUNT = "123456789012"
REGION = "eu-west-1"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/certs"


def contexts(service: str, operation: str, params: dict[str, Any], **kw: Any) -> list[tuple[str, str, dict]]:
    found = request_contexts(service, operation, params, region=REGION, account_id=ACCOUNT, **kw)
    return [(c.action, c.resource, dict(c.condition_values)) for c in found]


@pytest.fixture
def backends() -> Iterator[dict[str, str]]:
    """A table keyed on ``pk`` and a signing key with an alias, in moto's in-process backends."""
    with mock_aws():
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName="certs",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        kms = boto3.client("kms", region_name=REGION)
        key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]
        kms.create_alias(AliasName="alias/ca", TargetKeyId=key["KeyId"])
        yield {"key_id": key["KeyId"], "key_arn": key["Arn"]}


# ------------------------------------------------------------------ request_contexts
def test_every_context_carries_transport_and_region() -> None:
    ((_, _, keys),) = contexts("cloudwatch", "PutMetricData", {"Namespace": "CA"})
    assert keys["aws:SecureTransport"] == ("false",)
    assert keys["aws:RequestedRegion"] == (REGION,)
    assert keys["cloudwatch:namespace"] == ("CA",)


@pytest.mark.parametrize("form", ["key_id", "key_arn", "alias/ca", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/ca"])
def test_kms_sign_resolves_any_key_reference_to_the_key_arn(backends: dict[str, str], form: str) -> None:
    key_id = backends.get(form, form)
    ((action, resource, keys),) = contexts("kms", "Sign", {"KeyId": key_id, "SigningAlgorithm": "ECDSA_SHA_256"})
    assert (action, resource) == ("kms:Sign", backends["key_arn"])
    assert keys["kms:SigningAlgorithm"] == ("ECDSA_SHA_256",)


@pytest.mark.parametrize("operation", ["Verify", "GetPublicKey", "DescribeKey"])
def test_kms_key_operations_authorise_on_the_key(backends: dict[str, str], operation: str) -> None:
    assert contexts("kms", operation, {"KeyId": "alias/ca"})[0][:2] == (f"kms:{operation}", backends["key_arn"])


def test_kms_create_key_authorises_on_star() -> None:
    assert contexts("kms", "CreateKey", {})[0][:2] == ("kms:CreateKey", "*")


@pytest.mark.parametrize(
    ("operation", "params", "leading"),
    [
        ("GetItem", {"Key": {"pk": {"S": "CERT#1"}, "sk": {"S": "A"}}}, ("CERT#1",)),
        ("PutItem", {"Item": {"pk": {"S": "CA#1"}, "sk": {"S": "A"}, "x": {"N": "1"}}}, ("CA#1",)),
        ("UpdateItem", {"Key": {"pk": {"S": "CERT#2"}, "sk": {"S": "A"}}}, ("CERT#2",)),
        ("DeleteItem", {"Key": {"pk": {"S": "CERT#3"}, "sk": {"S": "A"}}}, ("CERT#3",)),
    ],
)
def test_dynamodb_item_operations_carry_leading_keys(
    backends: dict[str, str], operation: str, params: dict, leading: tuple[str, ...]
) -> None:
    ((action, resource, keys),) = contexts("dynamodb", operation, {"TableName": "certs", **params})
    assert (action, resource, keys["dynamodb:LeadingKeys"]) == (f"dynamodb:{operation}", TABLE_ARN, leading)


@pytest.mark.parametrize(
    ("params", "leading"),
    [
        ({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "CERT#1"}}}, ("CERT#1",)),
        (
            {
                "KeyConditionExpression": "#k = :p AND begins_with(sk, :s)",
                "ExpressionAttributeNames": {"#k": "pk"},
                "ExpressionAttributeValues": {":p": {"S": "CERT#9"}, ":s": {"S": "x"}},
            },
            ("CERT#9",),
        ),
        ({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "CA#1"}]}}}, ("CA#1",)),
        ({"KeyConditionExpression": "sk = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}}, None),
    ],
)
def test_dynamodb_query_derives_leading_key_from_the_key_condition(
    backends: dict[str, str], params: dict, leading: tuple[str, ...] | None
) -> None:
    ((_, _, keys),) = contexts("dynamodb", "Query", {"TableName": "certs", **params})
    assert keys.get("dynamodb:LeadingKeys") == leading


def test_dynamodb_query_on_an_index_authorises_on_the_index(backends: dict[str, str]) -> None:
    ((action, resource, _),) = contexts("dynamodb", "Query", {"TableName": "certs", "IndexName": "byStatus"})
    assert (action, resource) == ("dynamodb:Query", f"{TABLE_ARN}/index/byStatus")


def test_dynamodb_batch_get_is_its_own_action_with_all_leading_keys(backends: dict[str, str]) -> None:
    keys = [{"pk": {"S": "CERT#1"}, "sk": {"S": "A"}}, {"pk": {"S": "CERT#2"}, "sk": {"S": "A"}}]
    ((action, resource, found),) = contexts("dynamodb", "BatchGetItem", {"RequestItems": {"certs": {"Keys": keys}}})
    assert (action, resource, found["dynamodb:LeadingKeys"]) == (
        "dynamodb:BatchGetItem",
        TABLE_ARN,
        ("CERT#1", "CERT#2"),
    )


def test_dynamodb_batch_write_covers_puts_and_deletes(backends: dict[str, str]) -> None:
    writes = [
        {"PutRequest": {"Item": {"pk": {"S": "CERT#1"}, "sk": {"S": "A"}}}},
        {"DeleteRequest": {"Key": {"pk": {"S": "CA#1"}, "sk": {"S": "A"}}}},
    ]
    ((action, _, found),) = contexts("dynamodb", "BatchWriteItem", {"RequestItems": {"certs": writes}})
    assert (action, found["dynamodb:LeadingKeys"]) == ("dynamodb:BatchWriteItem", ("CERT#1", "CA#1"))


def test_dynamodb_transact_write_authorises_each_inner_item(backends: dict[str, str]) -> None:
    key = {"pk": {"S": "CERT#1"}, "sk": {"S": "A"}}
    items = [
        {"Put": {"TableName": "certs", "Item": {**key, "pk": {"S": "CA#1"}}}},
        {"Update": {"TableName": "certs", "Key": key}},
        {"Delete": {"TableName": "certs", "Key": key}},
        {"ConditionCheck": {"TableName": "certs", "Key": key}},
    ]
    found = contexts("dynamodb", "TransactWriteItems", {"TransactItems": items})
    assert [(a, k["dynamodb:LeadingKeys"]) for a, _, k in found] == [
        ("dynamodb:PutItem", ("CA#1",)),
        ("dynamodb:UpdateItem", ("CERT#1",)),
        ("dynamodb:DeleteItem", ("CERT#1",)),
        ("dynamodb:ConditionCheckItem", ("CERT#1",)),
    ]


def test_dynamodb_transact_get_is_get_item_each(backends: dict[str, str]) -> None:
    items = [{"Get": {"TableName": "certs", "Key": {"pk": {"S": "CERT#1"}, "sk": {"S": "A"}}}}] * 2
    assert [c[0] for c in contexts("dynamodb", "TransactGetItems", {"TransactItems": items})] == [
        "dynamodb:GetItem"
    ] * 2


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("DescribeTable", {"TableName": "certs"}, ("dynamodb:DescribeTable", TABLE_ARN)),
        (
            "DescribeStream",
            {"StreamArn": f"{TABLE_ARN}/stream/L"},
            ("dynamodb:DescribeStream", f"{TABLE_ARN}/stream/L"),
        ),
        (
            "GetShardIterator",
            {"StreamArn": f"{TABLE_ARN}/stream/L"},
            ("dynamodb:GetShardIterator", f"{TABLE_ARN}/stream/L"),
        ),
        (
            "GetRecords",
            {"ShardIterator": f"{TABLE_ARN}/stream/L|1|abc"},
            ("dynamodb:GetRecords", f"{TABLE_ARN}/stream/L"),
        ),
        ("ListStreams", {}, ("dynamodb:ListStreams", "*")),
    ],
)
def test_dynamodb_table_and_stream_operations(
    backends: dict[str, str], operation: str, params: dict, expected: tuple
) -> None:
    assert contexts("dynamodb", operation, params)[0][:2] == expected


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("GetObject", {"Bucket": "b", "Key": "ca/root.pem"}, ("s3:GetObject", "arn:aws:s3:::b/ca/root.pem")),
        ("HeadObject", {"Bucket": "b", "Key": "k"}, ("s3:GetObject", "arn:aws:s3:::b/k")),
        ("GetObject", {"Bucket": "b", "Key": "k", "VersionId": "v1"}, ("s3:GetObjectVersion", "arn:aws:s3:::b/k")),
        ("PutObject", {"Bucket": "b", "Key": "k"}, ("s3:PutObject", "arn:aws:s3:::b/k")),
        ("DeleteObject", {"Bucket": "b", "Key": "k"}, ("s3:DeleteObject", "arn:aws:s3:::b/k")),
        ("ListObjectsV2", {"Bucket": "b"}, ("s3:ListBucket", "arn:aws:s3:::b")),
        ("ListBucket", {"Bucket": "b"}, ("s3:ListBucket", "arn:aws:s3:::b")),
    ],
)
def test_s3_actions_and_resources(operation: str, params: dict, expected: tuple) -> None:
    assert contexts("s3", operation, params)[0][:2] == expected


def test_s3_list_carries_the_prefix() -> None:
    assert contexts("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "crl/"})[0][2]["s3:prefix"] == ("crl/",)


def test_acm_first_import_authorises_on_any_certificate_with_request_tags() -> None:
    ((action, resource, keys),) = contexts("acm", "ImportCertificate", {"Tags": [{"Key": "managed-by", "Value": "ca"}]})
    assert (action, resource) == ("acm:ImportCertificate", f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/*")
    assert keys["aws:RequestTag/managed-by"] == ("ca",)
    assert keys["aws:TagKeys"] == ("managed-by",)


def test_acm_reimport_authorises_on_the_certificate_with_its_tags() -> None:
    arn = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/abc"
    ((_, resource, keys),) = contexts(
        "acm",
        "ImportCertificate",
        {"CertificateArn": arn},
        resource_tags=lambda a: {"managed-by": "ca"} if a == arn else {},
    )
    assert resource == arn
    assert keys["aws:ResourceTag/managed-by"] == ("ca",)
    assert "aws:TagKeys" not in keys


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        ("acm", "ListCertificates", {}, ("acm:ListCertificates", "*")),
        ("acm", "DescribeCertificate", {"CertificateArn": "arn:c"}, ("acm:DescribeCertificate", "arn:c")),
        ("acm", "AddTagsToCertificate", {"CertificateArn": "arn:c", "Tags": []}, ("acm:AddTagsToCertificate", "arn:c")),
        ("acm", "DeleteCertificate", {"CertificateArn": "arn:c"}, ("acm:DeleteCertificate", "arn:c")),
        ("sns", "Publish", {"TopicArn": "arn:t"}, ("sns:Publish", "arn:t")),
        (
            "sqs",
            "SendMessage",
            {"QueueUrl": f"http://localhost/{ACCOUNT}/q"},
            ("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"),
        ),
        (
            "cloudfront",
            "GetTrustStore",
            {"Id": "ts1"},
            ("cloudfront:GetTrustStore", f"arn:aws:cloudfront::{ACCOUNT}:trust-store/ts1"),
        ),
        (
            "cloudfront",
            "UpdateTrustStore",
            {"Id": "ts1"},
            ("cloudfront:UpdateTrustStore", f"arn:aws:cloudfront::{ACCOUNT}:trust-store/ts1"),
        ),
        ("sts", "AssumeRole", {"RoleArn": "arn:r"}, ("sts:AssumeRole", "arn:r")),
        (
            "cloudfront-keyvaluestore",
            "UpdateKeys",
            {"KvsARN": "arn:k"},
            ("cloudfront-keyvaluestore:UpdateKeys", "arn:k"),
        ),
        (
            "cloudfront-keyvaluestore",
            "DescribeKeyValueStore",
            {"KvsARN": "arn:k"},
            ("cloudfront-keyvaluestore:DescribeKeyValueStore", "arn:k"),
        ),
        (
            "lambda",
            "Invoke",
            {"FunctionName": "issue"},
            ("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:issue"),
        ),
        ("cloudformation", "DescribeStacks", {}, ("cloudformation:DescribeStacks", "*")),
        (
            "cloudformation",
            "DescribeStacks",
            {"StackName": "ca"},
            ("cloudformation:DescribeStacks", f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/ca/*"),
        ),
        (
            "events",
            "PutEvents",
            {"Entries": [{"Source": "ca"}]},
            ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"),
        ),
        ("monitoring", "PutMetricData", {"Namespace": "CA"}, ("cloudwatch:PutMetricData", "*")),
    ],
)
def test_other_services(service: str, operation: str, params: dict, expected: tuple) -> None:
    assert contexts(service, operation, params)[0][:2] == expected


def test_get_caller_identity_needs_no_permission() -> None:
    assert contexts("sts", "GetCallerIdentity", {}) == []


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("dynamodb", "RestoreTableFromBackup"),
        ("kms", "ImportKeyMaterial"),
        ("s3", "PutBucketAcl"),
        ("iam", "CreateRole"),
    ],
)
def test_unknown_operation_raises_when_strict(service: str, operation: str) -> None:
    with pytest.raises(UnknownOperation):
        contexts(service, operation, {"TableName": "certs", "KeyId": "k", "Bucket": "b"}, strict=True)


@pytest.mark.parametrize(("service", "operation"), [("dynamodb", "RestoreTableFromBackup"), ("iam", "CreateRole")])
def test_unknown_operation_is_authorised_on_every_resource_only(service: str, operation: str) -> None:
    (found,) = request_contexts(service, operation, {"TableName": "certs"}, region=REGION, account_id=ACCOUNT)
    assert (found.action, found.resource) == (f"{service}:{operation}", "*")
    scoped = {
        "Statement": [{"Effect": "Allow", "Action": f"{service}:*", "Resource": "arn:aws:dynamodb:*:*:table/certs"}]
    }
    admin = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    assert not evaluate([scoped], found).allowed
    assert evaluate([admin], found).allowed


@pytest.mark.parametrize(
    ("service", "status", "code"),
    [
        ("dynamodb", 400, "AccessDeniedException"),
        ("lambda", 403, "AccessDeniedException"),
        ("cloudfront-keyvaluestore", 403, "AccessDeniedException"),
        ("s3", 403, "<Code>AccessDenied</Code>"),
        ("sts", 403, "<Code>AccessDenied</Code>"),
        ("sns", 403, "<Code>AuthorizationError</Code>"),
    ],
)
def test_deny_response_has_the_service_error_shape(service: str, status: int, code: str) -> None:
    got_status, _, body = deny_response(service, "User: x is not authorized")
    assert got_status == status
    assert code in body and "User: x is not authorized" in body


# ------------------------------------------------------------------ end to end, moto in server mode
ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "CertItems",
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:GetItem"],
            "Resource": TABLE_ARN,
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["CERT#*"]}},
        },
        {"Sid": "Sign", "Effect": "Allow", "Action": "kms:Sign", "Resource": "KEY_ARN"},
        {"Sid": "Crl", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/crl/*"},
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    """moto on 127.0.0.1 with a table, a bucket, two keys and a role assumed by ``session``."""
    enforcer = IamEnforcer(ACCOUNT)
    patch_moto_iam(enforcer)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    admin = {
        "endpoint_url": f"http://{host}:{port}",
        "region_name": REGION,
        "aws_access_key_id": "AKIAADMIN",
        "aws_secret_access_key": "x",
        "aws_session_token": None,
    }
    client = lambda service, **kw: boto3.client(service, **{**admin, **kw})  # noqa: E731
    client("dynamodb").create_table(
        TableName="certs",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    kms = client("kms")
    allowed, other = (kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"] for _ in range(2))
    s3 = client("s3")
    s3.create_bucket(Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    for key in ("crl/issuing.crl", "private/key.pem"):
        s3.put_object(Bucket="bucket", Key=key, Body=b"x")
    iam = client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName="issuer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    document = json.dumps(ROLE_POLICY).replace("KEY_ARN", allowed["Arn"])
    iam.put_role_policy(RoleName="issuer", PolicyName="issuer", PolicyDocument=document)
    creds = client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="test")["Credentials"]
    session = {
        **admin,
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    yield {
        "enforcer": enforcer,
        "session": session,
        "admin": admin,
        "allowed_key": allowed["Arn"],
        "other_key": other["Arn"],
    }
    moto.stop()
    unpatch_moto_iam()


@pytest.fixture
def as_role(server: dict[str, Any]) -> Iterator[Any]:
    """A boto3 client factory for the assumed role, enforcement on."""
    server["enforcer"].enabled = True
    yield lambda service: boto3.client(service, **server["session"])
    server["enforcer"].enabled = False


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return {
        "code": caught.value.response["Error"]["Code"],
        "message": caught.value.response["Error"].get("Message", ""),
        "status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"],
    }


def test_put_item_under_the_permitted_leading_key_is_allowed(as_role: Any) -> None:
    as_role("dynamodb").put_item(TableName="certs", Item={"pk": {"S": "CERT#1"}})


def test_put_item_under_another_leading_key_is_denied_as_dynamodb_does(as_role: Any) -> None:
    error = _error(lambda: as_role("dynamodb").put_item(TableName="certs", Item={"pk": {"S": "CA#1"}}))
    assert (error["code"], error["status"]) == ("AccessDeniedException", 400)
    assert error["message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/issuer/test is not authorized to perform: dynamodb:PutItem "
        f"on resource: {TABLE_ARN} because no identity-based policy allows the dynamodb:PutItem action"
    )


def test_sign_with_the_permitted_key_is_allowed(as_role: Any, server: dict[str, Any]) -> None:
    as_role("kms").sign(
        KeyId=server["allowed_key"], Message=b"\0" * 32, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
    )


def test_sign_with_another_key_is_denied(as_role: Any, server: dict[str, Any]) -> None:
    error = _error(
        lambda: as_role("kms").sign(
            KeyId=server["other_key"], Message=b"\0" * 32, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
        )
    )
    assert error["code"] == "AccessDeniedException"
    assert server["other_key"] in error["message"]


def test_s3_get_object_under_the_permitted_prefix_is_allowed(as_role: Any) -> None:
    assert as_role("s3").get_object(Bucket="bucket", Key="crl/issuing.crl")["Body"].read() == b"x"


def test_s3_get_object_elsewhere_is_denied_403(as_role: Any) -> None:
    error = _error(lambda: as_role("s3").get_object(Bucket="bucket", Key="private/key.pem"))
    assert (error["code"], error["status"]) == ("AccessDenied", 403)


def test_s3_head_object_is_authorised_as_get_object(as_role: Any) -> None:
    as_role("s3").head_object(Bucket="bucket", Key="crl/issuing.crl")
    assert _error(lambda: as_role("s3").head_object(Bucket="bucket", Key="private/key.pem"))["status"] == 403


def test_unknown_access_key_is_refused(server: dict[str, Any], as_role: Any) -> None:
    stranger = boto3.client("dynamodb", **{**server["admin"], "aws_access_key_id": "AKIASTRANGER"})
    error = _error(lambda: stranger.describe_table(TableName="certs"))
    assert (error["code"], error["status"]) == ("UnrecognizedClientException", 400)


def test_get_caller_identity_is_always_allowed(as_role: Any) -> None:
    assert ":assumed-role/issuer/test" in as_role("sts").get_caller_identity()["Arn"]


def test_enforcement_off_lets_everything_through(server: dict[str, Any]) -> None:
    server["enforcer"].enabled = False
    boto3.client("dynamodb", **server["session"]).put_item(TableName="certs", Item={"pk": {"S": "CA#2"}})
    boto3.client("dynamodb", **{**server["admin"], "aws_access_key_id": "AKIASTRANGER"}).describe_table(
        TableName="certs"
    )


def test_enforcer_authorize_raises_access_denied_for_the_sandbox_front(server: dict[str, Any]) -> None:
    enforcer = IamEnforcer(ACCOUNT, enabled=True)
    session = server["session"]
    kvs = request_contexts(
        "cloudfront-keyvaluestore",
        "UpdateKeys",
        {"KvsARN": "arn:aws:cloudfront::1:key-value-store/x"},
        region=REGION,
        account_id=ACCOUNT,
    )
    with pytest.raises(AccessDenied, match="cloudfront-keyvaluestore:UpdateKeys on resource"):
        enforcer.authorize(session["aws_access_key_id"], session["aws_session_token"], kvs)


def test_an_unmapped_operation_is_refused_to_a_scoped_role(as_role: Any) -> None:
    error = _error(lambda: as_role("dynamodb").list_backups())
    assert error["code"] == "AccessDeniedException"


def test_patching_twice_keeps_moto_original_for_unpatch(server: dict[str, Any]) -> None:
    from moto.core.authorization import ActionAuthenticatorMixin

    hook = ActionAuthenticatorMixin._authenticate_and_authorize_action
    patch_moto_iam(server["enforcer"])
    assert ActionAuthenticatorMixin._authenticate_and_authorize_action.__wrapped__ is hook.__wrapped__
