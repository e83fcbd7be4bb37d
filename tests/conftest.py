"""Fixtures every layer may use: the AWS environment (no test reaches real AWS), moto with the
sandbox's patches, one CA's resources in moto, fixed keys and CSRs.

The helpers live in ``tests/support`` (``aws.py``: moto resources and handlers; ``csr.py``: CSRs);
their names are re-exported here for imports written as ``from tests.conftest import ...``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from tests.support.aws import (
    HIERARCHY_PROPERTIES,
    REGION,
    REPO,
    TEMPLATE,
    CaResources,
    FakeContext,
    create_ca_table,
    load_handler,
    put_revoked,
)
from tests.support.csr import csr_pem, make_csr
from tests.support.records import NOW
from utils.sandbox.acm_patch import patch_moto_acm
from utils.sandbox.dynamodb_patch import patch_moto_dynamodb
from utils.sandbox.kms_patch import patch_moto_kms

__all__ = [
    "HIERARCHY_PROPERTIES",
    "NOW",
    "REGION",
    "REPO",
    "TEMPLATE",
    "CaResources",
    "FakeContext",
    "create_ca_table",
    "csr_pem",
    "load_handler",
    "make_csr",
    "put_revoked",
]


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


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


# Keys and CSRs -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0x1D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8, ec.SECP256R1())


@pytest.fixture
def ec_csr_builder(ec_key: ec.EllipticCurvePrivateKey) -> Callable[..., x509.CertificateSigningRequest]:
    def build(**kwargs: Any) -> x509.CertificateSigningRequest:
        return make_csr(ec_key, **kwargs)

    return build
