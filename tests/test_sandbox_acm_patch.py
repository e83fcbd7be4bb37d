"""The moto ACM patch: re-import into the same ARN keeps tags, refuses tags, key changes and
mismatched keys as AWS does; DescribeCertificate reports key usages and a colon-hex serial."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from moto import mock_aws

from utils.sandbox.acm_patch import patch_moto_acm, unpatch_moto_acm

TAGS = [{"Key": "managed-by", "Value": "kmsca"}, {"Key": "kmsca:serial-number", "Value": "01"}]


class Pki:
    """A CA key and certificate, and leaves it signs (EKU clientAuth, KU digitalSignature)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def chain(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def leaf(self, key: Any = None, serial: int | None = None) -> tuple[bytes, bytes, int]:
        """(certificate PEM, private key PEM, serial)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        serial = serial or x509.random_serial_number()
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "origin.example")]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=90))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem, serial


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture
def acm() -> Iterator[Any]:
    patch_moto_acm()
    patch_moto_acm()  # idempotent
    with mock_aws():
        yield boto3.client("acm", region_name="us-east-1")


def first_import(acm: Any, pki: Pki) -> tuple[str, int]:
    cert, key, serial = pki.leaf()
    arn = acm.import_certificate(Certificate=cert, PrivateKey=key, CertificateChain=pki.chain, Tags=TAGS)[
        "CertificateArn"
    ]
    return arn, serial


def tags_of(acm: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}


def serial_of(acm: Any, arn: str) -> str:
    return str(acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"])


def colon_hex(serial: int) -> str:
    raw = serial.to_bytes((serial.bit_length() + 7) // 8, "big")
    return ":".join(f"{b:02x}" for b in raw)


def test_describe_reports_usages_and_colon_hex_serial(acm: Any, pki: Pki) -> None:
    arn, serial = first_import(acm, pki)
    details = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert details["ExtendedKeyUsages"] == [{"Name": "TLS_WEB_CLIENT_AUTHENTICATION", "OID": "1.3.6.1.5.5.7.3.2"}]
    assert details["KeyUsages"] == [{"Name": "DIGITAL_SIGNATURE"}]
    assert details["Serial"] == colon_hex(serial)
    assert details["KeyAlgorithm"] == "EC_prime256v1"
    summary = acm.list_certificates()["CertificateSummaryList"]
    assert [s["CertificateArn"] for s in summary] == [arn]


def test_reimport_into_the_same_arn_keeps_tags(acm: Any, pki: Pki) -> None:
    arn, _ = first_import(acm, pki)
    cert, key, serial = pki.leaf()
    again = acm.import_certificate(CertificateArn=arn, Certificate=cert, PrivateKey=key, CertificateChain=pki.chain)
    assert again["CertificateArn"] == arn
    assert serial_of(acm, arn) == colon_hex(serial)
    assert tags_of(acm, arn) == {"managed-by": "kmsca", "kmsca:serial-number": "01"}
    assert acm.get_certificate(CertificateArn=arn)["Certificate"].strip() == cert.decode().strip()
    assert len(acm.list_certificates()["CertificateSummaryList"]) == 1


def test_tags_are_refused_on_reimport(acm: Any, pki: Pki) -> None:
    arn, serial = first_import(acm, pki)
    cert, key, _ = pki.leaf()
    with pytest.raises(ClientError) as refused:
        acm.import_certificate(CertificateArn=arn, Certificate=cert, PrivateKey=key, Tags=TAGS)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Tagging is not permitted on re-import" in refused.value.response["Error"]["Message"]
    assert serial_of(acm, arn) == colon_hex(serial)  # the old certificate stays


def test_key_type_cannot_change_on_reimport(acm: Any, pki: Pki) -> None:
    arn, serial = first_import(acm, pki)
    cert, key, _ = pki.leaf(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(ClientError) as refused:
        acm.import_certificate(CertificateArn=arn, Certificate=cert, PrivateKey=key, CertificateChain=pki.chain)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "EC_prime256v1" in refused.value.response["Error"]["Message"]
    assert serial_of(acm, arn) == colon_hex(serial)


def test_private_key_must_match_the_certificate(acm: Any, pki: Pki) -> None:
    cert, _, _ = pki.leaf()
    _, other_key, _ = pki.leaf()
    with pytest.raises(ClientError) as refused:
        acm.import_certificate(Certificate=cert, PrivateKey=other_key, CertificateChain=pki.chain)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    arn, serial = first_import(acm, pki)
    with pytest.raises(ClientError):
        acm.import_certificate(CertificateArn=arn, Certificate=cert, PrivateKey=other_key, CertificateChain=pki.chain)
    assert serial_of(acm, arn) == colon_hex(serial)


def test_reimport_into_an_unknown_arn_is_not_found(acm: Any, pki: Pki) -> None:
    arn, _ = first_import(acm, pki)
    acm.delete_certificate(CertificateArn=arn)
    cert, key, _ = pki.leaf()
    with pytest.raises(ClientError) as missing:
        acm.import_certificate(CertificateArn=arn, Certificate=cert, PrivateKey=key, CertificateChain=pki.chain)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_without_the_patch_moto_loses_the_tags(pki: Pki) -> None:
    """Why the patch exists (and that unpatch restores moto's behaviour)."""
    unpatch_moto_acm()
    try:
        with mock_aws():
            acm = boto3.client("acm", region_name="us-east-1")
            arn, _ = first_import(acm, pki)
            cert, key, _ = pki.leaf()
            acm.import_certificate(CertificateArn=arn, Certificate=cert, PrivateKey=key, CertificateChain=pki.chain)
            assert tags_of(acm, arn) == {}
            assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["ExtendedKeyUsages"] == []
    finally:
        patch_moto_acm()
