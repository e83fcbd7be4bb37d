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
from kmsca.truststore import (
    TrustStoreOcspUnavailable,
    ocsp_url_problems,
    require_ocsp_urls,
    trust_store_problems,
    update_trust_store,
)


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


@pytest.mark.parametrize("use_ocsp", [True, False])
def test_update_trust_store_sets_ocsp_checking_as_configured(use_ocsp: bool) -> None:
    client = boto3.client("cloudfront", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("get_trust_store", {"ETag": "E1", "TrustStore": {}}, {"Identifier": "ts-1"})
        stub.add_response(
            "update_trust_store",
            {"ETag": "E2", "TrustStore": {"UseClientCertificateOCSPEndpoint": use_ocsp}},
            {"Id": "ts-1", "IfMatch": "E1", "UseClientCertificateOCSPEndpoint": use_ocsp, "CaCertificatesBundleSource": {
                "CaCertificatesBundleS3Location": {"Bucket": "pub", "Key": "ca-bundle.pem", "Region": "eu-west-1"}}},
        )
        assert update_trust_store(client, "ts-1", "pub", "ca-bundle.pem", "eu-west-1", use_ocsp=use_ocsp) == "E2"
        stub.assert_no_pending_responses()


def _issued(issuer_key: Any, issuer: x509.Certificate, name: str, ocsp_url: str | None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(issuer.subject).public_key(key.public_key()).serial_number(2)
               .not_valid_before(now).not_valid_after(now + timedelta(days=1)))
    if ocsp_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def test_ocsp_checking_needs_an_ocsp_url_on_every_ca_but_the_root() -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _self_signed(root_key, "root")  # no AIA, as CloudFront never asks about the root
    with_url = _issued(root_key, root, "issuing", "http://pki.example.com/ocsp")
    without = _issued(root_key, root, "issuing-old", None)
    assert ocsp_url_problems([with_url, root]) == []
    assert ocsp_url_problems([without, root]) == ["CN=issuing-old has no AIA OCSP URL"]
    with pytest.raises(TrustStoreOcspUnavailable, match=r"TrustStoreOcsp.*CN=issuing-old has no AIA OCSP URL"):
        require_ocsp_urls([without, root])


def test_p521_hierarchy_says_so_loudly(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.handlers.test_bootstrap import ResponseCatcher
    from tests.support.aws import HIERARCHY_PROPERTIES, CaResources, FakeContext, load_handler

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


def _bootstrap_event(catcher_url: str) -> dict[str, Any]:
    from tests.support.aws import HIERARCHY_PROPERTIES

    return {
        "RequestType": "Update", "ResponseURL": catcher_url, "StackId": "s", "RequestId": "r",
        "PhysicalResourceId": "ca-table/ca-hierarchy", "LogicalResourceId": "CaHierarchy",
        "ResourceType": "Custom::CaHierarchy", "ResourceProperties": HIERARCHY_PROPERTIES,
    }


@pytest.mark.parametrize(
    ("ocsp_url", "trust_store_ocsp", "expected"),
    [("https://pki.example.com/ocsp", "true", True), ("https://pki.example.com/ocsp", "false", False),
     ("", "false", False)],
    ids=["ocsp-on", "ocsp-off", "no-ocsp-url-off"],
)
def test_bootstrap_sets_the_trust_store_ocsp_setting(
    aws: None, monkeypatch: pytest.MonkeyPatch, ocsp_url: str, trust_store_ocsp: str, expected: bool
) -> None:
    from tests.handlers.test_bootstrap import ResponseCatcher
    from tests.support.aws import CaResources, FakeContext, load_handler

    resources = CaResources()
    env = {**resources.env, "TRUST_STORE_ID": "ts-1", "OCSP_URL": ocsp_url, "TRUST_STORE_OCSP": trust_store_ocsp}
    module = load_handler("bootstrap", env, monkeypatch)
    catcher = ResponseCatcher()
    try:
        with Stubber(module.cloudfront) as stub:
            stub.add_response("get_trust_store", {"ETag": "E1", "TrustStore": {}}, {"Identifier": "ts-1"})
            stub.add_response("update_trust_store", {"ETag": "E2", "TrustStore": {}}, {
                "Id": "ts-1", "IfMatch": "E1", "UseClientCertificateOCSPEndpoint": expected,
                "CaCertificatesBundleSource": {"CaCertificatesBundleS3Location": {
                    "Bucket": resources.bucket, "Key": "ca-bundle.pem", "Region": env["AWS_REGION"]}}})
            module.handler(_bootstrap_event(catcher.url), FakeContext())
            stub.assert_no_pending_responses()
    finally:
        catcher.close()
    assert catcher.bodies[0]["Status"] == "SUCCESS"


def test_bootstrap_refuses_trust_store_ocsp_when_the_issuing_ca_has_no_ocsp_url(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.handlers.test_bootstrap import ResponseCatcher
    from tests.support.aws import CaResources, FakeContext, load_handler

    resources = CaResources()
    env = {**resources.env, "TRUST_STORE_ID": "ts-1", "OCSP_URL": "", "TRUST_STORE_OCSP": "true"}
    module = load_handler("bootstrap", env, monkeypatch)
    catcher = ResponseCatcher()
    try:
        with Stubber(module.cloudfront) as stub:  # no response queued: any CloudFront call would fail the test
            with pytest.raises(TrustStoreOcspUnavailable):
                module.handler(_bootstrap_event(catcher.url), FakeContext())
            stub.assert_no_pending_responses()
    finally:
        catcher.close()
    (body,) = catcher.bodies
    assert body["Status"] == "FAILED"
    assert "TrustStoreOcsp" in body["Reason"] and "has no AIA OCSP URL" in body["Reason"]
    assert "EnableOcsp=true" in body["Reason"]
