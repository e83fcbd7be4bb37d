"""Fixtures every layer may use: the AWS environment (no test reaches real AWS), moto with the
sandbox's patches, one CA's resources in moto, fixed keys and CSRs.

The helpers live in ``tests/support`` (``aws.py``: moto resources and handlers; ``csr.py``: CSRs);
import them from there."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import botocore.loaders
import botocore.session
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from tests.support import ca_snapshot
from tests.support.aws import (
    HIERARCHY_PROPERTIES,
    REGION,
    CaResources,
)
from utils.sandbox.acm_patch import patch_moto_acm
from utils.sandbox.dynamodb_patch import patch_moto_dynamodb
from utils.sandbox.kms_patch import patch_moto_kms
from utils.sandbox.s3_patch import patch_moto_s3


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader() -> Iterator[None]:
    """botocore's data (service models, endpoint rules) parsed once per run, not once per test.

    moto gives every test a new default boto3 session (``mock_aws`` resets ``boto3.DEFAULT_SESSION``),
    and each session's loader parses the same JSON again: a quarter of a handler test's time. The
    loader is what botocore already shares between the clients of one session (an instance cache of
    what it read), so sharing it between sessions changes nothing else. Keyed on ``AWS_DATA_PATH``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", functools.lru_cache(maxsize=None)(botocore.loaders.create_loader))
        yield


@pytest.fixture(scope="module", autouse=True)
def _moto_iam_managed_policies_per_module() -> Iterator[None]:
    """A module's sandbox does not slow down the modules after it.

    Starting a sandbox turns on moto's AWS managed IAM policies for the whole process
    (``MOTO_IAM_LOAD_MANAGED_POLICIES``, set by utils/sandbox/server.py for the policies SAM
    attaches); from then on every moto reset (each ``mock_aws`` start and stop) parses them again
    for every account it has seen: seconds per test. The setting is put back after each module, so
    every module runs as it would alone."""
    saved = os.environ.get(MANAGED_POLICIES)
    yield
    if saved is None:
        os.environ.pop(MANAGED_POLICIES, None)
    else:
        os.environ[MANAGED_POLICIES] = saved


#: moto's switch for loading AWS managed IAM policies into every IAM backend.
MANAGED_POLICIES = "MOTO_IAM_LOAD_MANAGED_POLICIES"


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
    """moto's in-process AWS, with KMS Sign fixed for DIGEST and PSS, ACM re-import fixed,
    DynamoDB writes atomic and S3 requests atomic (see utils/sandbox/kms_patch.py, acm_patch.py,
    dynamodb_patch.py, s3_patch.py)."""
    patch_moto_kms()
    patch_moto_acm()
    patch_moto_dynamodb()
    patch_moto_s3()
    with mock_aws():
        yield


@pytest.fixture
def ca_resources(aws: None) -> CaResources:
    return CaResources()


@pytest.fixture
def bootstrapped(aws: None) -> CaResources:
    """One CA's resources with the hierarchy created and published (as the custom resource does).

    The first test bootstraps for real (``kmsca.bootstrap.bootstrap_ca``); later tests get a copy
    of what it left in moto (tests/support/ca_snapshot.py), each its own."""
    if _BOOTSTRAPPED:
        return ca_snapshot.restore(_BOOTSTRAPPED[0])
    from kmsca.bootstrap import CaHierarchyConfig, bootstrap_ca
    from kmsca.settings import BootstrapSettings
    from kmsca.store import DynamoDbCertificateStore

    resources = CaResources()
    bootstrap_ca(
        DynamoDbCertificateStore(resources.dynamodb, resources.table),
        resources.kms,
        resources.s3,
        BootstrapSettings.from_env(resources.env),
        CaHierarchyConfig.from_properties(HIERARCHY_PROPERTIES),
        datetime.now(UTC),
    )
    _BOOTSTRAPPED.append(ca_snapshot.take(resources))
    return resources


#: The bootstrapped CA of this run, taken by the first test that asks for one.
_BOOTSTRAPPED: list[ca_snapshot.CaSnapshot] = []


# Keys and CSRs -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0x1D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8, ec.SECP256R1())
