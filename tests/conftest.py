"""Shared fixtures: fixed keys, CSRs, and AWS (moto, KMS patched to sign like AWS) with the
resources template.yaml declares."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws

from utils.sandbox.acm_patch import patch_moto_acm
from utils.sandbox.dynamodb_patch import patch_moto_dynamodb
from utils.sandbox.kms_patch import patch_moto_kms
from utils.sandbox.template import load_template

REPO = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
NOW = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)
TEMPLATE = load_template(REPO / "template.yaml")


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach real AWS: dummy credentials, a fixed region, no endpoint override."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "kmsca-tests",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-process AWS, with KMS Sign fixed for DIGEST and PSS, ACM re-import fixed and
    DynamoDB writes atomic (see utils/sandbox/kms_patch.py, acm_patch.py, dynamodb_patch.py)."""
    patch_moto_kms()
    patch_moto_acm()
    patch_moto_dynamodb()
    with mock_aws():
        yield


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

    def __init__(self, root_spec: str = "ECC_NIST_P384", issuing_spec: str = "ECC_NIST_P256") -> None:
        self.kms = boto3.client("kms", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.root_key = self.kms.create_key(KeySpec=root_spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        self.issuing_key = self.kms.create_key(KeySpec=issuing_spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        self.table = "ca-table"
        self.bucket = "ca-public"
        self.internal_bucket = "ca-internal"
        create_ca_table(self.dynamodb, self.table)
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


@pytest.fixture
def ca_resources(aws: None) -> CaResources:
    return CaResources()


@pytest.fixture
def bootstrapped(ca_resources: CaResources) -> CaResources:
    """ca_resources with the hierarchy created and published (as the custom resource does)."""
    from kmsca.bootstrap import CaHierarchyConfig, bootstrap_ca
    from kmsca.settings import BootstrapSettings
    from kmsca.store import DynamoDbCertificateStore

    bootstrap_ca(
        DynamoDbCertificateStore(ca_resources.dynamodb, ca_resources.table),
        ca_resources.kms,
        ca_resources.s3,
        BootstrapSettings.from_env(ca_resources.env),
        CaHierarchyConfig.from_properties(HIERARCHY_PROPERTIES),
        datetime.now(UTC),
    )
    return ca_resources


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
    function_name = "test-function"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/test-function"
    log_stream_name = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


# Keys and CSRs -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0x1D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8, ec.SECP256R1())


def make_csr(
    key: Any,
    common_name: str | None = "device-1",
    sans: list[x509.GeneralName] | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if algorithm is None and not hasattr(key, "curve") and not hasattr(key, "key_size"):
        return builder.sign(key, None)  # ML-DSA, Ed25519
    return builder.sign(key, algorithm or hashes.SHA256())


def csr_pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def ec_csr_builder(ec_key: ec.EllipticCurvePrivateKey) -> Callable[..., x509.CertificateSigningRequest]:
    def build(**kwargs: Any) -> x509.CertificateSigningRequest:
        return make_csr(ec_key, **kwargs)

    return build


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
