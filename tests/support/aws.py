"""moto resources of one CA as template.yaml declares them, and the handlers loaded as Lambda
loads them (a cold start): what the handler, adapter and deploy tests share."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from utils.sandbox.template import load_template

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
TEMPLATE = load_template(REPO / "template.yaml")


def create_ca_table(dynamodb: Any, table_name: str) -> None:
    """Create the inventory table with the key schema and indexes template.yaml declares."""
    props = TEMPLATE["Resources"]["CaTable"]["Properties"]
    dynamodb.create_table(
        TableName=table_name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        BillingMode=props["BillingMode"],
        StreamSpecification={"StreamEnabled": True, **props["StreamSpecification"]},
    )


class CaResources:
    """Keys, table and bucket of one CA in moto; ``env`` is what template.yaml gives functions."""

    table = "ca-table"
    bucket = "ca-public"
    internal_bucket = "ca-internal"

    def __init__(self, root_spec: str = "ECC_NIST_P384", issuing_spec: str = "ECC_NIST_P256") -> None:
        self.connect()
        self.root_key = self.kms.create_key(KeySpec=root_spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        self.issuing_key = self.kms.create_key(KeySpec=issuing_spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        create_ca_table(self.dynamodb, self.table)
        self.create_buckets()

    def connect(self) -> None:
        """The KMS, DynamoDB and S3 clients (moto's, in the test's region)."""
        self.kms = boto3.client("kms", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)

    def create_buckets(self) -> None:
        """The public and the internal bucket, empty."""
        for bucket in (self.bucket, self.internal_bucket):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})

    @property
    def env(self) -> dict[str, str]:
        return {
            "CA_TABLE_NAME": self.table,
            "PUBLIC_BUCKET_NAME": self.bucket,
            "INTERNAL_BUCKET_NAME": self.internal_bucket,
            "ROOT_CA_KEY_ID": self.root_key,
            "ISSUING_CA_KEY_ID": self.issuing_key,
            "MAX_LIFETIME_DAYS": "365",
            "DEFAULT_LIFETIME_DAYS": "90",
            "PUBLIC_BASE_URL": "https://pki.example.com",
            "EVENT_SOURCE": "kmsca.test",
            "AWS_REGION": REGION,
        }

    def item_count(self) -> int:
        return self.dynamodb.scan(TableName=self.table, Select="COUNT")["Count"]

    def certificate_count(self) -> int:
        return self.dynamodb.scan(
            TableName=self.table,
            Select="COUNT",
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": "CERT#"}},
        )["Count"]


HIERARCHY_PROPERTIES = {
    "RootCaCommonName": "Test Root CA",
    "IssuingCaCommonName": "Test Issuing CA",
    "Organization": "Example",
    "OrganizationalUnit": "",
    "Country": "DE",
    "RootCaLifetimeDays": "3650",
    "IssuingCaLifetimeDays": "1825",
}


def load_handler(function_dir: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import functions/<function_dir>/app.py fresh (a cold start) with ``env`` set."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = REPO / "functions" / function_dir / "app.py"
    module_name = f"_handler_{function_dir}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


class FakeContext:
    """The Lambda context object a handler receives (the attributes Powertools reads)."""

    function_name = "test-function"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/test-function"
    log_stream_name = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def put_revoked(resources: CaResources, serial: str, not_after: datetime, reason: str = "keyCompromise",
                revoked_at: str = "2026-11-01T00:00:00Z") -> None:
    """Write a revoked certificate item directly (the shape the revoke function leaves)."""
    resources.dynamodb.put_item(TableName=resources.table, Item={
        "pk": {"S": f"CERT#{serial}"}, "serial_number": {"S": serial}, "ca": {"S": "issuing"},
        "status": {"S": "revoked"}, "revoked_ca": {"S": "issuing"},
        "not_after": {"S": not_after.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "revoked_at": {"S": revoked_at}, "revocation_reason": {"S": reason},
        "crl_entry": {"S": f"{revoked_at} {reason}"},
    })
