"""OCSP responder core (kmsca.ocsp, kmsca.responder): local keys, an in-memory store, fixed times.

Peers: ``openssl ocsp`` verifies every successful response against the CA bundle, and pkilint's
OCSP response linter reports no error or warning.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kmsca.ca import CaSigner
from kmsca.certificates import (
    ISSUING,
    ROOT,
    build_end_entity_certificate,
    build_issuing_certificate,
    build_root_certificate,
)
from kmsca.ocsp import MAX_REQUEST_BYTES, OcspRefusal, error_response, parse_request
from kmsca.records import STATUS_REVOKED, CaRecord, CertificateRecord
from kmsca.responder import (
    RESPONDER_LIFETIME,
    OcspResponder,
    presign_ca_status,
)
from kmsca.settings import SigningSettings
from kmsca.signer import signature_scheme

NOW = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)
VALIDITY = timedelta(minutes=60)
MALFORMED = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
UNAUTHORIZED = ocsp.OCSPResponseStatus.UNAUTHORIZED


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Hierarchy:
    """Root (P-384) and issuing (P-256) CAs with local keys, and two leaves."""

    def __init__(self) -> None:
        root_key = ec.generate_private_key(ec.SECP384R1())
        issuing_key = ec.generate_private_key(ec.SECP256R1())
        root_scheme = signature_scheme(root_key, SigningSettings())
        self.root_cert = build_root_certificate(
            root_key, root_scheme, _name("Test Root"), 1001, NOW - timedelta(days=1), NOW + timedelta(days=3650)
        )
        self.issuing_cert = build_issuing_certificate(
            root_key,
            root_scheme,
            self.root_cert,
            issuing_key.public_key(),
            _name("Test Issuing"),
            2002,
            NOW - timedelta(days=1),
            NOW + timedelta(days=1000),
            None,
        )
        self.root = CaSigner(CaRecord(ROOT, self.root_cert, "root-key", NOW), root_key, root_scheme)
        self.issuing = CaSigner(
            CaRecord(ISSUING, self.issuing_cert, "issuing-key", NOW),
            issuing_key,
            signature_scheme(issuing_key, SigningSettings()),
        )
        self.good = self.leaf(0x1111)
        self.revoked = self.leaf(0x2222)

    def leaf(self, serial: int) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        return build_end_entity_certificate(
            self.issuing.private_key,
            self.issuing.scheme,
            self.issuing_cert,
            key.public_key(),
            _name(f"leaf {serial}"),
            [],
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            serial,
            NOW - timedelta(days=1),
            NOW + timedelta(days=30),
            None,
        )


class MemoryStore:
    """The one store call the responder makes: get_certificate (a consistent GetItem)."""

    def __init__(self) -> None:
        self.records: dict[str, CertificateRecord] = {}
        self.fail = False

    def get_certificate(self, serial_number: str) -> CertificateRecord | None:
        if self.fail:
            raise RuntimeError("DynamoDB is down")
        return self.records.get(serial_number)


class MemoryPresigned:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)


@pytest.fixture(scope="module")
def ca() -> Hierarchy:
    return Hierarchy()


@pytest.fixture
def store(ca: Hierarchy) -> MemoryStore:
    store = MemoryStore()
    good = CertificateRecord.from_certificate(ca.good, ca=ISSUING, profile="client", issued_at=NOW)
    revoked = CertificateRecord.from_certificate(ca.revoked, ca=ISSUING, profile="client", issued_at=NOW)
    store.records[good.serial_number] = good
    store.records[revoked.serial_number] = CertificateRecord(
        **{
            **revoked.__dict__,
            "status": STATUS_REVOKED,
            "revoked_at": NOW - timedelta(hours=1),
            "revocation_reason": "keyCompromise",
        }
    )
    return store


@pytest.fixture
def presigned() -> MemoryPresigned:
    return MemoryPresigned()


@pytest.fixture
def responder(ca: Hierarchy, store: MemoryStore, presigned: MemoryPresigned) -> OcspResponder:
    return OcspResponder(store, lambda: ca.issuing, lambda: ca.root_cert, presigned, VALIDITY)  # type: ignore[arg-type]


def request_der(
    cert: x509.Certificate, issuer: x509.Certificate, algorithm: Any = None, nonce: bytes | None = None
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def get_path(der: bytes) -> str:
    return "/" + quote(base64.b64encode(der).decode("ascii"), safe="")


def refusal(responder: OcspResponder, method: str, path: str, body: bytes) -> ocsp.OCSPResponseStatus:
    with pytest.raises(OcspRefusal) as caught:
        responder.answer(method, path, body, NOW)
    return caught.value.status


# -- statuses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256()], ids=["sha1", "sha256"])
def test_an_issued_certificate_is_good(responder: OcspResponder, ca: Hierarchy, algorithm: Any) -> None:
    answer = responder.answer("POST", "", request_der(ca.good, ca.issuing_cert, algorithm), NOW)
    response = ocsp.load_der_ocsp_response(answer.body)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.hash_algorithm.name == algorithm.name
    assert response.serial_number == ca.good.serial_number


def test_a_revoked_certificate_is_revoked_with_time_and_reason(responder: OcspResponder, ca: Hierarchy) -> None:
    response = ocsp.load_der_ocsp_response(
        responder.answer("POST", "", request_der(ca.revoked, ca.issuing_cert), NOW).body
    )
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == NOW - timedelta(hours=1)
    assert response.revocation_reason == x509.ReasonFlags.key_compromise


def test_an_unspecified_reason_is_omitted(responder: OcspResponder, ca: Hierarchy, store: MemoryStore) -> None:
    serial = format(ca.revoked.serial_number, "x")
    store.records[serial] = CertificateRecord(**{**store.records[serial].__dict__, "revocation_reason": "unspecified"})
    response = ocsp.load_der_ocsp_response(
        responder.answer("POST", "", request_der(ca.revoked, ca.issuing_cert), NOW).body
    )
    assert response.revocation_reason is None


def test_a_serial_never_issued_is_unknown(responder: OcspResponder, ca: Hierarchy) -> None:
    stranger = ca.leaf(0x3333)
    response = ocsp.load_der_ocsp_response(
        responder.answer("GET", get_path(request_der(stranger, ca.issuing_cert)), b"", NOW).body
    )
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


def test_times_are_now_and_now_plus_validity(responder: OcspResponder, ca: Hierarchy) -> None:
    answer = responder.answer("POST", "", request_der(ca.good, ca.issuing_cert), NOW)
    response = ocsp.load_der_ocsp_response(answer.body)
    assert (response.this_update_utc, response.next_update_utc) == (NOW, NOW + VALIDITY)
    assert (answer.this_update, answer.next_update) == (NOW, NOW + VALIDITY)


def test_the_nonce_is_echoed(responder: OcspResponder, ca: Hierarchy) -> None:
    body = request_der(ca.good, ca.issuing_cert, nonce=b"0123456789abcdef")
    response = ocsp.load_der_ocsp_response(responder.answer("POST", "", body, NOW).body)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"


def test_no_nonce_is_needed(responder: OcspResponder, ca: Hierarchy) -> None:
    response = ocsp.load_der_ocsp_response(
        responder.answer("POST", "", request_der(ca.good, ca.issuing_cert), NOW).body
    )
    with pytest.raises(x509.ExtensionNotFound):
        response.extensions.get_extension_for_class(x509.OCSPNonce)


# -- the delegated responder ----------------------------------------------------------------------


def test_the_responder_certificate_is_a_delegated_ocsp_signer(responder: OcspResponder, ca: Hierarchy) -> None:
    response = ocsp.load_der_ocsp_response(
        responder.answer("POST", "", request_der(ca.good, ca.issuing_cert), NOW).body
    )
    (certificate,) = response.certificates
    assert certificate.issuer == ca.issuing_cert.subject
    assert certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.OCSP_SIGNING]
    )
    certificate.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert certificate.not_valid_after_utc - NOW == RESPONDER_LIFETIME
    certificate.verify_directly_issued_by(ca.issuing_cert)
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def test_one_ca_signature_serves_many_responses(responder: OcspResponder, ca: Hierarchy) -> None:
    for minute in range(100):
        responder.answer("POST", "", request_der(ca.good, ca.issuing_cert), NOW + timedelta(minutes=minute))
    assert responder.kms_signatures == 1


def test_the_responder_certificate_is_renewed_before_it_would_outlive_a_response(
    responder: OcspResponder, ca: Hierarchy
) -> None:
    responder.answer("POST", "", request_der(ca.good, ca.issuing_cert), NOW)
    response = ocsp.load_der_ocsp_response(
        responder.answer("POST", "", request_der(ca.good, ca.issuing_cert), NOW + timedelta(hours=19)).body
    )
    assert responder.kms_signatures == 2
    assert response.certificates[0].not_valid_after_utc >= response.next_update_utc


# -- the issuing CA's own status (root-signed, pre-signed elsewhere) ----------------------------------


def test_the_issuing_ca_status_is_served_from_the_root_signed_response(
    responder: OcspResponder, ca: Hierarchy, presigned: MemoryPresigned
) -> None:
    presigned.objects.update(presign_ca_status(ca.root, ca.issuing_cert, NOW, NOW + timedelta(hours=24)))
    for algorithm in (hashes.SHA1(), hashes.SHA256()):
        answer = responder.answer("POST", "", request_der(ca.issuing_cert, ca.root_cert, algorithm), NOW)
        response = ocsp.load_der_ocsp_response(answer.body)
        assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
        assert (
            response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(ca.root_cert.public_key()).digest
        )
        ca.root_cert.public_key().verify(  # type: ignore[union-attr, call-arg]
            response.signature,
            response.tbs_response_bytes,
            ec.ECDSA(response.signature_hash_algorithm),  # type: ignore[arg-type]
        )
    assert responder.kms_signatures == 0


def test_a_root_issued_serial_without_a_presigned_response_is_unauthorized(
    responder: OcspResponder, ca: Hierarchy
) -> None:
    assert refusal(responder, "POST", "", request_der(ca.issuing_cert, ca.root_cert)) == UNAUTHORIZED


# -- bad input ---------------------------------------------------------------------------------------


def test_another_issuer_is_unauthorized(responder: OcspResponder) -> None:
    other = Hierarchy()
    assert refusal(responder, "POST", "", request_der(other.good, other.issuing_cert)) == UNAUTHORIZED


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "", b"garbage"),
        ("POST", "", b""),
        ("POST", "", b"\x30" * (MAX_REQUEST_BYTES + 1)),
        ("POST", "", b"x" * 100 * 1024),
        ("GET", "/", b""),
        ("GET", "/not%20base64!", b""),
        ("GET", "/" + base64.b64encode(b"hello world, not a request").decode(), b""),
        ("PUT", "", b""),
    ],
    ids=["garbage", "empty", "too-large", "100KB", "empty-path", "not-base64", "base64-not-request", "method"],
)
def test_bad_input_is_a_malformed_request(responder: OcspResponder, method: str, path: str, body: bytes) -> None:
    assert refusal(responder, method, path, body) == MALFORMED


def test_truncated_der_is_a_malformed_request(responder: OcspResponder, ca: Hierarchy) -> None:
    der = request_der(ca.good, ca.issuing_cert)
    assert refusal(responder, "POST", "", der[:-5]) == MALFORMED


def test_an_unsupported_hash_is_a_malformed_request(responder: OcspResponder, ca: Hierarchy) -> None:
    assert refusal(responder, "POST", "", request_der(ca.good, ca.issuing_cert, hashes.SHA512())) == MALFORMED


def test_a_store_failure_propagates_for_try_later(responder: OcspResponder, ca: Hierarchy, store: MemoryStore) -> None:
    store.fail = True
    with pytest.raises(RuntimeError):
        responder.answer("POST", "", request_der(ca.good, ca.issuing_cert), NOW)


def test_error_responses_carry_only_the_status() -> None:
    response = ocsp.load_der_ocsp_response(error_response(ocsp.OCSPResponseStatus.TRY_LATER))
    assert response.response_status == ocsp.OCSPResponseStatus.TRY_LATER


def test_parse_request_reads_the_serial_as_canonical_hex(ca: Hierarchy) -> None:
    assert parse_request(request_der(ca.good, ca.issuing_cert)).serial_number == "1111"


# -- peers --------------------------------------------------------------------------------------------


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize(("leaf", "expected"), [("good", ": good"), ("revoked", ": revoked")])
def test_openssl_verifies_the_response(
    responder: OcspResponder, ca: Hierarchy, tmp_path: Path, leaf: str, expected: str
) -> None:
    cert = getattr(ca, leaf)
    (tmp_path / "resp.der").write_bytes(responder.answer("POST", "", request_der(cert, ca.issuing_cert), NOW).body)
    (tmp_path / "bundle.pem").write_bytes(_pem(ca.root_cert, ca.issuing_cert))
    (tmp_path / "issuing.pem").write_bytes(_pem(ca.issuing_cert))
    (tmp_path / "leaf.pem").write_bytes(_pem(cert))
    result = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-respin",
            "resp.der",
            "-CAfile",
            "bundle.pem",
            "-issuer",
            "issuing.pem",
            "-cert",
            "leaf.pem",
            "-attime",
            str(int(NOW.timestamp()) + 60),
            "-validity_period",
            "100000000",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Response verify OK" in result.stderr, result.stderr
    assert f"leaf.pem{expected}" in result.stdout, result.stdout


def test_pkilint_finds_nothing_in_a_response(responder: OcspResponder, ca: Hierarchy, tmp_path: Path) -> None:
    linter = shutil.which("lint_ocsp_response") or str(Path(__import__("sys").executable).parent / "lint_ocsp_response")
    if not Path(linter).exists():
        pytest.skip("pkilint not installed")
    (tmp_path / "resp.der").write_bytes(
        responder.answer("POST", "", request_der(ca.revoked, ca.issuing_cert), NOW).body
    )
    result = subprocess.run(
        [linter, "lint", "-s", "WARNING", str(tmp_path / "resp.der")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
