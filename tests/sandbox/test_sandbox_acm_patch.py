"""The moto ACM patch: re-import into the same ARN keeps tags, refuses tags, key changes and
mismatched keys as AWS does; DescribeCertificate reports key usages and a colon-hex serial; an
import breaking ACM's prerequisites (algorithm of the signing CA, chain, key size and encryption,
validity, FQDN or IP address) is refused with ValidationException."""

from __future__ import annotations

import ipaddress
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


# Import rules (ACM User Guide, "Prerequisites for importing ACM certificates") ---------------

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_key(family: str) -> Any:
    return RSA_KEY if family == "RSA" else ec.generate_private_key(ec.SECP256R1())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Any, encryption: Any = None) -> bytes:
    return bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8 if encryption else serialization.PrivateFormat.TraditionalOpenSSL,
        encryption or serialization.NoEncryption(),
    ))


def certificate(
    key: Any,
    common_name: str | None,
    issuer: tuple[x509.Certificate, Any] | None = None,
    ca: bool = False,
    sans: list[x509.GeneralName] | None = None,
    not_before: timedelta = timedelta(minutes=-5),
    not_after: timedelta = timedelta(days=90),
) -> x509.Certificate:
    """A certificate for ``key`` signed by ``issuer`` (certificate, key), or self-signed."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=not common_name)
    return builder.sign(signing_key, hashes.SHA256())


class Hierarchy:
    """root -> issuing CA of one algorithm family, as the project's CA builds them."""

    def __init__(self, family: str) -> None:
        self.root_key = new_key(family)
        self.root = certificate(self.root_key, f"{family} Root CA", ca=True, not_after=timedelta(days=3650))
        self.issuing_key = new_key(family)
        self.issuing = certificate(
            self.issuing_key, f"{family} Issuing CA", (self.root, self.root_key), ca=True, not_after=timedelta(days=1825)
        )

    @property
    def chain(self) -> bytes:
        return pem(self.issuing) + pem(self.root)

    def leaf(self, key: Any, common_name: str | None = "origin.example", **kwargs: Any) -> x509.Certificate:
        return certificate(key, common_name, (self.issuing, self.issuing_key), **kwargs)


@pytest.fixture(scope="module")
def hierarchies() -> dict[str, Hierarchy]:
    return {"EC": Hierarchy("EC"), "RSA": Hierarchy("RSA")}


def refused(acm: Any, cert: bytes, key: bytes, chain: bytes | None) -> str:
    """Import, expecting a ValidationException; returns its message."""
    kwargs: dict[str, Any] = {"CertificateChain": chain} if chain is not None else {}
    with pytest.raises(ClientError) as error:
        acm.import_certificate(Certificate=cert, PrivateKey=key, **kwargs)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert acm.list_certificates()["CertificateSummaryList"] == []
    return str(error.value.response["Error"]["Message"])


@pytest.mark.parametrize("family", ["EC", "RSA"])
def test_a_leaf_of_its_ca_algorithm_is_accepted(acm: Any, hierarchies: dict[str, Hierarchy], family: str) -> None:
    pki = hierarchies[family]
    key = new_key(family)
    arn = acm.import_certificate(Certificate=pem(pki.leaf(key)), PrivateKey=key_pem(key), CertificateChain=pki.chain)[
        "CertificateArn"
    ]
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainName"] == "origin.example"


@pytest.mark.parametrize(("ca", "leaf"), [("EC", "RSA"), ("RSA", "EC")])
def test_the_algorithm_must_match_the_signing_ca(acm: Any, hierarchies: dict[str, Hierarchy], ca: str, leaf: str) -> None:
    key = new_key(leaf)
    message = refused(acm, pem(hierarchies[ca].leaf(key)), key_pem(key), hierarchies[ca].chain)
    assert "must match the algorithm of the signing CA" in message
    assert f"{ca} Issuing CA" in message


def test_a_chain_deeper_than_three_is_refused(acm: Any, hierarchies: dict[str, Hierarchy]) -> None:
    pki = hierarchies["EC"]
    sub_key = new_key("EC")
    sub = certificate(sub_key, "EC Sub CA", (pki.issuing, pki.issuing_key), ca=True)
    key = new_key("EC")
    leaf = certificate(key, "origin.example", (sub, sub_key))
    message = refused(acm, pem(leaf), key_pem(key), pem(sub) + pki.chain)
    assert "holds 3 certificates; at most 2" in message


def test_a_chain_holding_the_leaf_is_refused(acm: Any, hierarchies: dict[str, Hierarchy]) -> None:
    pki = hierarchies["EC"]
    key = new_key("EC")
    leaf = pem(pki.leaf(key))
    message = refused(acm, leaf, key_pem(key), leaf + pem(pki.issuing))
    assert "must not include the certificate being imported" in message


def test_a_chain_without_the_issuer_is_refused(acm: Any, hierarchies: dict[str, Hierarchy]) -> None:
    key = new_key("EC")
    message = refused(acm, pem(hierarchies["EC"].leaf(key)), key_pem(key), hierarchies["RSA"].chain)
    assert "Could not validate the certificate with the certificate chain" in message


def test_a_ca_signed_certificate_needs_a_chain(acm: Any, hierarchies: dict[str, Hierarchy]) -> None:
    key = new_key("EC")
    message = refused(acm, pem(hierarchies["EC"].leaf(key)), key_pem(key), None)
    assert "Please provide either a valid self-signed certificate or certificate chain" in message


def test_a_private_key_over_5_kb_is_refused(acm: Any, hierarchies: dict[str, Hierarchy]) -> None:
    """A valid key with a long preamble (as ``openssl pkcs12`` writes "Bag Attributes")."""
    key = new_key("EC")
    padded = b"Bag Attributes\n" + b"    friendlyName: origin.example\n" * 200 + key_pem(key)
    assert len(padded) > 5120
    serialization.load_pem_private_key(padded, password=None)  # a key moto alone would import
    message = refused(acm, pem(hierarchies["EC"].leaf(key)), padded, hierarchies["EC"].chain)
    assert "at most 5120 bytes" in message


def test_an_encrypted_private_key_is_refused(acm: Any, hierarchies: dict[str, Hierarchy]) -> None:
    key = new_key("EC")
    encrypted = key_pem(key, serialization.BestAvailableEncryption(b"passphrase"))
    message = refused(acm, pem(hierarchies["EC"].leaf(key)), encrypted, hierarchies["EC"].chain)
    assert "encrypted" in message


@pytest.mark.parametrize(
    ("not_before", "not_after", "expected"),
    [
        (timedelta(days=1), timedelta(days=90), "not in effect yet"),
        (timedelta(days=-90), timedelta(days=-1), "has expired"),
    ],
)
def test_a_certificate_not_valid_now_is_refused(
    acm: Any, hierarchies: dict[str, Hierarchy], not_before: timedelta, not_after: timedelta, expected: str
) -> None:
    """moto itself refuses these; the test pins the behaviour the sandbox relies on."""
    key = new_key("EC")
    leaf = hierarchies["EC"].leaf(key, not_before=not_before, not_after=not_after)
    assert expected in refused(acm, pem(leaf), key_pem(key), hierarchies["EC"].chain)


@pytest.mark.parametrize("common_name", [None, "device-1", "not a host.example"])
def test_a_certificate_without_fqdn_or_ip_is_refused(
    acm: Any, hierarchies: dict[str, Hierarchy], common_name: str | None
) -> None:
    key = new_key("EC")
    sans: list[x509.GeneralName] = [x509.RFC822Name("ops@example.com")]
    leaf = hierarchies["EC"].leaf(key, common_name, sans=sans)
    message = refused(acm, pem(leaf), key_pem(key), hierarchies["EC"].chain)
    assert "fully qualified domain name (FQDN) or an IP address" in message


@pytest.mark.parametrize(
    ("common_name", "sans"),
    [
        (None, [x509.DNSName("origin.example.com")]),
        (None, [x509.IPAddress(ipaddress.ip_address("192.0.2.10"))]),
        ("192.0.2.10", None),
        ("*.origin.example.com", None),
    ],
)
def test_a_dns_or_ip_name_is_enough(
    acm: Any, hierarchies: dict[str, Hierarchy], common_name: str | None, sans: list[x509.GeneralName] | None
) -> None:
    key = new_key("EC")
    leaf = hierarchies["EC"].leaf(key, common_name, sans=sans)
    acm.import_certificate(Certificate=pem(leaf), PrivateKey=key_pem(key), CertificateChain=hierarchies["EC"].chain)


def test_a_self_signed_certificate_needs_no_chain(acm: Any) -> None:
    key = new_key("EC")
    acm.import_certificate(Certificate=pem(certificate(key, "origin.example")), PrivateKey=key_pem(key))


def test_without_the_patch_moto_imports_an_rsa_leaf_under_an_ec_ca(hierarchies: dict[str, Hierarchy]) -> None:
    """Why the import rules exist (and that unpatch restores moto's behaviour)."""
    unpatch_moto_acm()
    try:
        with mock_aws():
            acm = boto3.client("acm", region_name="us-east-1")
            key = new_key("RSA")
            leaf = pem(hierarchies["EC"].leaf(key))
            acm.import_certificate(Certificate=leaf, PrivateKey=key_pem(key), CertificateChain=hierarchies["EC"].chain)
            assert len(acm.list_certificates()["CertificateSummaryList"]) == 1
    finally:
        patch_moto_acm()
