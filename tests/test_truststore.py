"""CloudFront trust-store readiness of the CA bundle, and UpdateTrustStore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, rsa
from cryptography.x509.oid import NameOID
from kmsca.publish import ca_bundle
from kmsca.truststore import trust_store_problems, update_trust_store


def _self_signed(key: Any, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1)))
    algorithm = None if isinstance(key, mldsa.MLDSA44PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


@pytest.mark.parametrize(
    "make_key",
    [lambda: ec.generate_private_key(ec.SECP256R1()), lambda: ec.generate_private_key(ec.SECP384R1()),
     lambda: rsa.generate_private_key(65537, 2048), lambda: rsa.generate_private_key(65537, 4096)],
    ids=["p256", "p384", "rsa2048", "rsa4096"],
)
def test_accepted_ca_keys(make_key: Any) -> None:
    assert trust_store_problems(ca_bundle([_self_signed(make_key(), "ok")])) == []


@pytest.mark.parametrize(
    ("make_key", "fragment"),
    [(lambda: ec.generate_private_key(ec.SECP521R1()), "secp521r1"),
     (lambda: mldsa.MLDSA44PrivateKey.generate(), "not accepted"),
     (lambda: rsa.generate_private_key(65537, 2560), "RSA-2560")],
    ids=["p521", "mldsa44", "rsa2560"],
)
def test_refused_ca_keys(make_key: Any, fragment: str) -> None:
    problems = trust_store_problems(ca_bundle([_self_signed(make_key(), "bad")]))
    assert problems and any(fragment in p for p in problems)


def test_bundle_limits() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bundle = ca_bundle([_self_signed(key, f"ca-{i}") for i in range(26)])
    assert any("26 certificates" in p for p in trust_store_problems(bundle))
    padded = bundle.replace(b"-----BEGIN", b"# " + b"x" * 3000 + b"\n-----BEGIN")
    assert any("bytes" in p for p in trust_store_problems(padded))


def test_the_default_hierarchy_is_trust_store_ready(bootstrapped: Any) -> None:
    bundle = bootstrapped.s3.get_object(Bucket=bootstrapped.bucket, Key="ca-bundle.pem")["Body"].read()
    assert trust_store_problems(bundle) == []
    assert len(bundle) < 64 * 1024


def test_update_trust_store_points_at_the_bundle() -> None:
    client = boto3.client("cloudfront", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("get_trust_store", {"ETag": "E1", "TrustStore": {}}, {"Identifier": "ts-1"})
        stub.add_response(
            "update_trust_store",
            {"ETag": "E2", "TrustStore": {}},
            {"Id": "ts-1", "IfMatch": "E1", "CaCertificatesBundleSource": {
                "CaCertificatesBundleS3Location": {"Bucket": "pub", "Key": "ca-bundle.pem", "Region": "eu-west-1"}}},
        )
        assert update_trust_store(client, "ts-1", "pub", "ca-bundle.pem", "eu-west-1") == "E2"
        stub.assert_no_pending_responses()


def test_p521_hierarchy_says_so_loudly(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import HIERARCHY_PROPERTIES, CaResources, FakeContext, load_handler
    from tests.test_bootstrap import ResponseCatcher

    resources = CaResources(root_spec="ECC_NIST_P521", issuing_spec="ECC_NIST_P256")
    module = load_handler("bootstrap", resources.env, monkeypatch)
    catcher = ResponseCatcher()
    try:
        data = module.handler({
            "RequestType": "Create", "ResponseURL": catcher.url, "StackId": "s", "RequestId": "r",
            "LogicalResourceId": "CaHierarchy", "ResourceType": "Custom::CaHierarchy",
            "ResourceProperties": HIERARCHY_PROPERTIES,
        }, FakeContext())
    finally:
        catcher.close()
    assert data["CloudFrontTrustStoreReady"].startswith("NO: ") and "secp521r1" in data["CloudFrontTrustStoreReady"]
    assert catcher.bodies[0]["Status"] == "SUCCESS"  # the CA works; it just cannot be a CloudFront trust store
    bundle = x509.load_pem_x509_certificates(
        resources.s3.get_object(Bucket=resources.bucket, Key="ca-bundle.pem")["Body"].read())
    assert bundle[0].public_key().curve.name == "secp521r1"
