"""Bootstrap: the CA hierarchy is created once, published, never replaced; the custom resource
always answers CloudFormation."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID
from cryptography.x509.verification import PolicyBuilder, Store
from kmsca.bootstrap import CaHierarchyConfig, bootstrap_ca
from kmsca.errors import CaNotReady, ConfigurationError
from kmsca.settings import BootstrapSettings
from kmsca.store import DynamoDbCertificateStore

from tests.support.aws import HIERARCHY_PROPERTIES, CaResources, FakeContext, load_handler


def _run(resources: CaResources, **overrides: str) -> Any:
    return bootstrap_ca(
        DynamoDbCertificateStore(resources.dynamodb, resources.table),
        resources.kms,
        resources.s3,
        BootstrapSettings.from_env(resources.env),
        CaHierarchyConfig.from_properties({**HIERARCHY_PROPERTIES, **overrides}),
        datetime.now(UTC),
    )


def _object(resources: CaResources, key: str) -> dict[str, Any]:
    return resources.s3.get_object(Bucket=resources.bucket, Key=key)


def test_first_run_creates_and_publishes_the_hierarchy(ca_resources: CaResources) -> None:
    result = _run(ca_resources)
    assert result.created == ("root", "issuing")
    assert set(result.published) == {"root.crt", "root.pem", "issuing.crt", "issuing.pem", "ca-bundle.pem"}
    root = x509.load_der_x509_certificate(_object(ca_resources, "root.crt")["Body"].read())
    issuing = x509.load_pem_x509_certificate(_object(ca_resources, "issuing.pem")["Body"].read())

    root_bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root_bc.critical and root_bc.value.ca and root_bc.value.path_length is None
    issuing_bc = issuing.extensions.get_extension_for_class(x509.BasicConstraints)
    assert issuing_bc.critical and issuing_bc.value.ca and issuing_bc.value.path_length == 0
    for cert in (root, issuing):
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        assert not usage.value.digital_signature
    assert issuing.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == \
        root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    cdp = issuing.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "https://pki.example.com/root.crl"
    aia = issuing.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_location.value == "https://pki.example.com/root.crt"
    assert root.subject.rfc4514_string() == "CN=Test Root CA,O=Example,C=DE"
    issuing.verify_directly_issued_by(root)
    # The key in the root certificate is the KMS key's, and the issuing CA's too.
    for cert, key_id in ((root, ca_resources.root_key), (issuing, ca_resources.issuing_key)):
        kms_der = ca_resources.kms.get_public_key(KeyId=key_id)["PublicKey"]
        assert cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == kms_der


def test_published_objects_have_trust_store_ready_types(ca_resources: CaResources) -> None:
    _run(ca_resources)
    assert _object(ca_resources, "root.crt")["ContentType"] == "application/pkix-cert"
    bundle = _object(ca_resources, "ca-bundle.pem")
    assert bundle["ContentType"] == "text/plain"
    text = bundle["Body"].read().decode()
    assert "\n\n" not in text and text.count("BEGIN CERTIFICATE") == 2
    root, issuing = x509.load_pem_x509_certificates(text.encode())
    assert root.subject == root.issuer and issuing.issuer == root.subject
    PolicyBuilder().store(Store([root]))  # loads as a trust store


def test_second_run_changes_nothing(ca_resources: CaResources) -> None:
    first = _run(ca_resources)
    etags = {k: _object(ca_resources, k)["ETag"] for k in first.published}
    items = ca_resources.item_count()
    second = _run(ca_resources, RootCaCommonName="Another Name")
    assert second.created == () and second.published == ()
    assert second.root.serial_number == first.root.serial_number
    assert second.issuing.serial_number == first.issuing.serial_number
    assert {k: _object(ca_resources, k)["ETag"] for k in first.published} == etags
    assert ca_resources.item_count() == items


def test_a_deleted_artefact_is_published_again(ca_resources: CaResources) -> None:
    _run(ca_resources)
    ca_resources.s3.delete_object(Bucket=ca_resources.bucket, Key="ca-bundle.pem")
    assert _run(ca_resources).published == ("ca-bundle.pem",)


def test_a_record_that_does_not_match_its_kms_key_is_never_replaced(ca_resources: CaResources) -> None:
    first = _run(ca_resources)
    other_key = ca_resources.kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    ca_resources.root_key = other_key
    with pytest.raises(CaNotReady, match="does not match its KMS key"):
        _run(ca_resources)
    records = DynamoDbCertificateStore(ca_resources.dynamodb, ca_resources.table).get_cas(["root"])
    assert records["root"].serial_number == first.root.serial_number


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"RootCaCommonName": ""}, "RootCaCommonName"),
        ({"RootCaLifetimeDays": "ten"}, "RootCaLifetimeDays"),
        ({"IssuingCaLifetimeDays": "3650"}, "shorter than RootCaLifetimeDays"),
        ({"Country": "Germany"}, "CA subject"),
    ],
)
def test_bad_hierarchy_properties(ca_resources: CaResources, overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        _run(ca_resources, **overrides)
    assert ca_resources.item_count() == 0


# The custom resource handler ----------------------------------------------------------------


class ResponseCatcher:
    """A local HTTP server standing in for CloudFormation's pre-signed ResponseURL."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                catcher.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/response"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def catcher() -> Any:
    server = ResponseCatcher()
    yield server
    server.close()


def _event(request_type: str, url: str, **properties: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/kmsca-dev/1",
        "RequestId": "req-1",
        "LogicalResourceId": "CaHierarchy",
        "ResourceType": "Custom::CaHierarchy",
        "ResourceProperties": {"ServiceToken": "arn", **HIERARCHY_PROPERTIES, **properties},
    }


def test_custom_resource_create_answers_success(
    ca_resources: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext, catcher: Any
) -> None:
    module = load_handler("bootstrap", ca_resources.env, monkeypatch)
    data = module.handler(_event("Create", catcher.url), lambda_context)
    (body,) = catcher.bodies
    assert body["Status"] == "SUCCESS" and body["Data"] == data
    assert body["PhysicalResourceId"] == f"{ca_resources.table}/ca-hierarchy"
    assert len(data["RootCaSerialNumber"]) % 2 == 0
    assert data["CaBundleS3Uri"] == f"s3://{ca_resources.bucket}/ca-bundle.pem"


def test_custom_resource_failure_answers_failed_with_the_reason(
    ca_resources: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext, catcher: Any
) -> None:
    module = load_handler("bootstrap", ca_resources.env, monkeypatch)
    with pytest.raises(ConfigurationError):
        module.handler(_event("Create", catcher.url, IssuingCaLifetimeDays="9999"), lambda_context)
    (body,) = catcher.bodies
    assert body["Status"] == "FAILED"
    assert "IssuingCaLifetimeDays" in body["Reason"]
    assert ca_resources.item_count() == 0


def test_custom_resource_delete_keeps_the_ca(
    ca_resources: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext, catcher: Any
) -> None:
    module = load_handler("bootstrap", ca_resources.env, monkeypatch)
    module.handler(_event("Create", catcher.url), lambda_context)
    items = ca_resources.item_count()
    event = {**_event("Delete", catcher.url), "PhysicalResourceId": f"{ca_resources.table}/ca-hierarchy"}
    module.handler(event, lambda_context)
    assert catcher.bodies[-1]["Status"] == "SUCCESS"
    assert ca_resources.item_count() == items
    assert _object(ca_resources, "ca-bundle.pem")["ContentLength"] > 0


def test_adding_the_ocsp_url_reissues_the_issuing_ca_with_the_same_key(
    ca_resources: CaResources, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext, ec_key: Any
) -> None:
    from tests.support.csr import csr_pem, make_csr

    def run(env: dict[str, str]) -> Any:
        return bootstrap_ca(DynamoDbCertificateStore(ca_resources.dynamodb, ca_resources.table), ca_resources.kms,
                            ca_resources.s3, BootstrapSettings.from_env(env),
                            CaHierarchyConfig.from_properties(HIERARCHY_PROPERTIES), datetime.now(UTC))  # fmt: skip

    def ocsp_urls(certificate: x509.Certificate) -> list[str]:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        return [str(d.access_location.value) for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]

    keys_before = len(ca_resources.kms.list_keys()["Keys"])
    before = run(ca_resources.env)
    old = before.issuing.certificate
    assert ocsp_urls(old) == []
    issue = load_handler("issue", ca_resources.env, monkeypatch)
    leaf = x509.load_pem_x509_certificate(
        issue.handler({"csr": csr_pem(make_csr(ec_key)), "sans": [{"type": "email", "value": "a@example.com"}]},
                      lambda_context)["certificate"].encode())  # pyca path validation needs a SAN

    with_ocsp = {**ca_resources.env, "OCSP_URL": "https://pki.example.com/ocsp"}
    after = run(with_ocsp)
    new = after.issuing.certificate
    assert "issuing (re-issued)" in after.created
    assert ocsp_urls(new) == ["https://pki.example.com/ocsp"]
    assert new.serial_number != old.serial_number
    assert new.subject == old.subject and new.issuer == old.issuer
    assert new.public_key() == old.public_key()  # the same KMS key: never a new one
    assert after.issuing.key_id == before.issuing.key_id == ca_resources.issuing_key
    assert len(ca_resources.kms.list_keys()["Keys"]) == keys_before
    assert new.not_valid_after_utc == old.not_valid_after_utc
    assert after.root.certificate.serial_number == before.root.certificate.serial_number
    assert x509.load_pem_x509_certificate(_object(ca_resources, "issuing.pem")["Body"].read()) == new
    # A certificate issued under the old issuing certificate still chains through the new one.
    root = after.root.certificate
    PolicyBuilder().store(Store([root])).build_client_verifier().verify(leaf, [new])
    # Nothing changes on the next run with the same settings.
    again = run(with_ocsp)
    assert again.issuing.certificate.serial_number == new.serial_number and again.created == ()


def test_pkilint_finds_nothing_in_the_reissued_issuing_ca_certificate(
    ca_resources: CaResources, tmp_path: Path
) -> None:
    """The issuing CA certificate re-issued with the AIA OCSP URL, linted as an RFC 5280 certificate."""
    import shutil
    import subprocess
    import sys

    linter = shutil.which("lint_pkix_cert") or str(Path(sys.executable).parent / "lint_pkix_cert")
    assert Path(linter).exists(), "pkilint is in requirements-dev.txt"

    def run(env: dict[str, str]) -> Any:
        return bootstrap_ca(DynamoDbCertificateStore(ca_resources.dynamodb, ca_resources.table), ca_resources.kms,
                            ca_resources.s3, BootstrapSettings.from_env(env),
                            CaHierarchyConfig.from_properties(HIERARCHY_PROPERTIES), datetime.now(UTC))  # fmt: skip

    run(ca_resources.env)
    reissued = run({**ca_resources.env, "OCSP_URL": "https://pki.example.com/ocsp"}).issuing.certificate
    path = tmp_path / "issuing.pem"
    path.write_bytes(reissued.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run([linter, "lint", "-s", "WARNING", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
