"""KMS-backed CA keys: every key spec moto can create, checked by cryptography and openssl;
ML-DSA through an in-memory KMS stand-in (moto cannot create ML-DSA keys)."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kmsca.certificates import build_end_entity_certificate, build_root_certificate
from kmsca.settings import SigningSettings
from kmsca.signer import (
    KmsEllipticCurvePrivateKey,
    KmsRsaPrivateKey,
    UnsupportedCaKey,
    load_kms_private_key,
    signature_scheme,
)

from tests.support.aws import REGION
from tests.support.records import NOW

SPECS = [
    ("ECC_NIST_P256", SigningSettings(), "ECDSA_SHA_256"),
    ("ECC_NIST_P384", SigningSettings(), "ECDSA_SHA_384"),
    ("ECC_NIST_P521", SigningSettings(), "ECDSA_SHA_512"),
    ("RSA_2048", SigningSettings("PKCS1_V1_5", "SHA_256"), "RSASSA_PKCS1_V1_5_SHA_256"),
    ("RSA_3072", SigningSettings("PKCS1_V1_5", "SHA_384"), "RSASSA_PKCS1_V1_5_SHA_384"),
    ("RSA_4096", SigningSettings("PKCS1_V1_5", "SHA_512"), "RSASSA_PKCS1_V1_5_SHA_512"),
    ("RSA_2048", SigningSettings("PSS", "SHA_256"), "RSASSA_PSS_SHA_256"),
    ("RSA_3072", SigningSettings("PSS", "SHA_384"), "RSASSA_PSS_SHA_384"),
    ("RSA_2048", SigningSettings("PSS", "SHA_512"), "RSASSA_PSS_SHA_512"),
]


class SignCallRecorder:
    """Counts kms:Sign calls and keeps their parameters (botocore event hook)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        client.meta.events.register("provide-client-params.kms.Sign", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(dict(params))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _root_and_leaf(private_key: Any, signing: SigningSettings) -> tuple[x509.Certificate, x509.Certificate]:
    scheme = signature_scheme(private_key, signing)
    root = build_root_certificate(private_key, scheme, _name("KMS Root"), 1, NOW, NOW + timedelta(days=30))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = build_end_entity_certificate(
        private_key, scheme, root, leaf_key.public_key(), _name("leaf"), [x509.DNSName("leaf.example.com")],
        [ExtendedKeyUsageOID.CLIENT_AUTH], 2, NOW, NOW + timedelta(days=1), None,
    )
    return root, leaf


def _verify_with_cryptography(issuer: x509.Certificate, cert: x509.Certificate, signing: SigningSettings) -> None:
    public_key = issuer.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    elif isinstance(public_key, rsa.RSAPublicKey):
        assert cert.signature_hash_algorithm is not None
        pad: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(cert.signature_hash_algorithm), padding.PSS.DIGEST_LENGTH)
            if signing.rsa_padding == "PSS"
            else padding.PKCS1v15()
        )
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, pad, cert.signature_hash_algorithm)
    else:
        public_key.verify(cert.signature, cert.tbs_certificate_bytes)  # type: ignore[call-arg]


@pytest.mark.parametrize(("key_spec", "signing", "algorithm"), SPECS, ids=[f"{s[0]}-{s[2]}" for s in SPECS])
def test_kms_key_signs_certificates_that_verify(
    aws: None, tmp_path: Path, key_spec: str, signing: SigningSettings, algorithm: str
) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(KeySpec=key_spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    recorder = SignCallRecorder(kms)
    private_key = load_kms_private_key(kms, key_id)
    assert isinstance(private_key, KmsEllipticCurvePrivateKey | KmsRsaPrivateKey)

    root, leaf = _root_and_leaf(private_key, signing)

    # one kms:Sign per certificate, always a digest, with the configured algorithm
    assert [c["SigningAlgorithm"] for c in recorder.calls] == [algorithm, algorithm]
    assert {c["MessageType"] for c in recorder.calls} == {"DIGEST"}
    _verify_with_cryptography(root, root, signing)
    _verify_with_cryptography(root, leaf, signing)
    leaf.verify_directly_issued_by(root)
    # a peer we did not write
    (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        ["openssl", "verify", "-attime", str(int(NOW.timestamp()) + 60), "-CAfile", "root.pem", "leaf.pem"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0 and "leaf.pem: OK" in result.stdout, result.stdout + result.stderr


def test_private_key_material_cannot_be_exported(aws: None) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    private_key = load_kms_private_key(kms, key_id)
    with pytest.raises(NotImplementedError):
        private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    with pytest.raises(NotImplementedError):
        private_key.private_numbers()


@pytest.mark.parametrize("spec", ["ECC_SECG_P256K1"])
def test_unusable_ca_key_specs_are_refused(aws: None, spec: str) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    with pytest.raises(UnsupportedCaKey, match=spec):
        load_kms_private_key(kms, key_id)


def test_encryption_keys_are_refused(aws: None) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
    with pytest.raises(UnsupportedCaKey, match="SIGN_VERIFY"):
        load_kms_private_key(kms, key_id)


# ML-DSA ---------------------------------------------------------------------------------------


class InMemoryMlDsaKms:
    """Stands in for KMS with one ML-DSA key: GetPublicKey and Sign(MessageType=EXTERNAL_MU)."""

    def __init__(self, private_key: Any, key_spec: str) -> None:
        self._key = private_key
        self._spec = key_spec
        self.sign_calls: list[dict[str, Any]] = []

    def get_public_key(self, KeyId: str) -> dict[str, Any]:
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"KeyId": KeyId, "KeySpec": self._spec, "KeyUsage": "SIGN_VERIFY", "PublicKey": der}

    def sign(self, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> dict[str, Any]:
        self.sign_calls.append({"MessageType": MessageType, "SigningAlgorithm": SigningAlgorithm})
        if MessageType != "EXTERNAL_MU" or SigningAlgorithm != "ML_DSA_SHAKE_256" or len(Message) != 64:
            raise ValueError("ML-DSA keys sign a 64-byte external mu with ML_DSA_SHAKE_256")
        return {"Signature": self._key.sign_mu(Message)}


@pytest.mark.parametrize(
    ("key_class", "spec"),
    [(mldsa.MLDSA44PrivateKey, "ML_DSA_44"), (mldsa.MLDSA65PrivateKey, "ML_DSA_65"),
     (mldsa.MLDSA87PrivateKey, "ML_DSA_87")],
)
def test_ml_dsa_ca_key_signs_through_external_mu(key_class: Any, spec: str) -> None:
    fake_kms = InMemoryMlDsaKms(key_class.generate(), spec)
    private_key = load_kms_private_key(fake_kms, "arn:aws:kms:eu-west-1:123456789012:key/mldsa")  # type: ignore[arg-type]
    assert isinstance(private_key, key_class)

    root, leaf = _root_and_leaf(private_key, SigningSettings())

    assert fake_kms.sign_calls == [{"MessageType": "EXTERNAL_MU", "SigningAlgorithm": "ML_DSA_SHAKE_256"}] * 2
    root.public_key().verify(root.signature, root.tbs_certificate_bytes)  # type: ignore[call-arg]
    root.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes)  # type: ignore[call-arg]
    assert root.signature_algorithm_oid.dotted_string.startswith("2.16.840.1.101.3.4.3.")
