"""The moto KMS patch signs like AWS KMS: DIGEST is not hashed again, PSS salt = digest length."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from moto import mock_aws

from utils.sandbox.kms_patch import patch_moto_kms

HASHES = {"SHA_256": hashes.SHA256(), "SHA_384": hashes.SHA384(), "SHA_512": hashes.SHA512()}

CASES = [
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_384"),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_512"),
    ("RSA_2048", "RSASSA_PSS_SHA_256"),
    ("RSA_2048", "RSASSA_PSS_SHA_384"),
    ("RSA_2048", "RSASSA_PSS_SHA_512"),
    ("ECC_NIST_P256", "ECDSA_SHA_256"),
    ("ECC_NIST_P384", "ECDSA_SHA_384"),
    ("ECC_NIST_P521", "ECDSA_SHA_512"),
]


@pytest.fixture(autouse=True)
def _patched() -> None:
    patch_moto_kms()
    patch_moto_kms()  # idempotent


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name="eu-west-1")


def _hash_of(algorithm: str) -> hashes.HashAlgorithm:
    return HASHES[algorithm[-7:]]


def _verify(public_der: bytes, signature: bytes, data: bytes, algorithm: str, prehashed: bool) -> None:
    """Verify with cryptography as a relying party would (raises InvalidSignature)."""
    public_key = serialization.load_der_public_key(public_der)
    hash_algorithm = _hash_of(algorithm)
    hash_arg = utils.Prehashed(hash_algorithm) if prehashed else hash_algorithm
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_arg))
    else:
        assert isinstance(public_key, rsa.RSAPublicKey)
        pad: padding.AsymmetricPadding
        if "PSS" in algorithm:
            pad = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
        else:
            pad = padding.PKCS1v15()
        public_key.verify(signature, data, pad, hash_arg)


def _key(kms: Any, key_spec: str) -> str:
    return kms.create_key(KeySpec=key_spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]


@pytest.mark.parametrize(("key_spec", "algorithm"), CASES)
def test_sign_digest_verifies_with_cryptography(kms: Any, key_spec: str, algorithm: str) -> None:
    key_id = _key(kms, key_spec)
    message = b"tbsCertificate bytes " * 500  # > 4096 bytes: only DIGEST can sign it
    hash_algorithm = _hash_of(algorithm)
    h = hashes.Hash(hash_algorithm)
    h.update(message)
    digest = h.finalize()

    response = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm)
    assert response["SigningAlgorithm"] == algorithm
    assert response["KeyId"] == key_id
    public = kms.get_public_key(KeyId=key_id)
    assert public["KeySpec"] == key_spec
    assert algorithm in public["SigningAlgorithms"]

    _verify(public["PublicKey"], response["Signature"], digest, algorithm, prehashed=True)
    _verify(public["PublicKey"], response["Signature"], message, algorithm, prehashed=False)
    # and KMS Verify agrees, for both message types
    assert kms.verify(
        KeyId=key_id,
        Message=digest,
        MessageType="DIGEST",
        Signature=response["Signature"],
        SigningAlgorithm=algorithm,
    )["SignatureValid"]


@pytest.mark.parametrize(("key_spec", "algorithm"), CASES)
def test_sign_raw_hashes_the_message(kms: Any, key_spec: str, algorithm: str) -> None:
    key_id = _key(kms, key_spec)
    message = b"short message"
    response = kms.sign(KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm=algorithm)
    public = kms.get_public_key(KeyId=key_id)["PublicKey"]
    _verify(public, response["Signature"], message, algorithm, prehashed=False)
    assert kms.verify(KeyId=key_id, Message=message, Signature=response["Signature"], SigningAlgorithm=algorithm)[
        "SignatureValid"
    ]


def test_default_message_type_is_raw(kms: Any) -> None:
    key_id = _key(kms, "ECC_NIST_P256")
    signature = kms.sign(KeyId=key_id, Message=b"abc", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    _verify(kms.get_public_key(KeyId=key_id)["PublicKey"], signature, b"abc", "ECDSA_SHA_256", prehashed=False)


@pytest.mark.parametrize(("key_spec", "algorithm"), [CASES[0], CASES[3], CASES[6], CASES[8]])
def test_digest_of_wrong_length_is_refused(kms: Any, key_spec: str, algorithm: str) -> None:
    key_id = _key(kms, key_spec)
    with pytest.raises(ClientError) as caught:
        kms.sign(KeyId=key_id, Message=b"\x01" * 20, MessageType="DIGEST", SigningAlgorithm=algorithm)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "Digest is invalid length" in caught.value.response["Error"]["Message"]


def test_raw_message_over_4096_bytes_is_refused(kms: Any) -> None:
    key_id = _key(kms, "ECC_NIST_P256")
    with pytest.raises(ClientError) as caught:
        kms.sign(KeyId=key_id, Message=b"x" * 4097, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_algorithm_not_of_the_key_is_refused(kms: Any) -> None:
    key_id = _key(kms, "ECC_NIST_P256")
    with pytest.raises(ClientError) as caught:
        kms.sign(
            KeyId=key_id,
            Message=hashlib.sha384(b"x").digest(),
            MessageType="DIGEST",
            SigningAlgorithm="ECDSA_SHA_384",
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_external_mu_is_refused_clearly(kms: Any) -> None:
    key_id = _key(kms, "ECC_NIST_P256")
    with pytest.raises(ClientError) as caught:
        kms.sign(KeyId=key_id, Message=b"\x00" * 64, MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "ML-DSA" in caught.value.response["Error"]["Message"]


def test_bad_signature_raises_like_aws(kms: Any) -> None:
    key_id = _key(kms, "ECC_NIST_P256")
    digest = hashlib.sha256(b"m").digest()
    signature = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"
    ]
    with pytest.raises(ClientError) as caught:
        kms.verify(
            KeyId=key_id,
            Message=hashlib.sha256(b"other").digest(),
            MessageType="DIGEST",
            Signature=signature,
            SigningAlgorithm="ECDSA_SHA_256",
        )
    assert caught.value.response["Error"]["Code"] == "KMSInvalidSignatureException"


def test_disabled_key_cannot_sign(kms: Any) -> None:
    key_id = _key(kms, "ECC_NIST_P256")
    kms.disable_key(KeyId=key_id.split("/")[-1])  # moto: no ARN here
    with pytest.raises(ClientError) as caught:
        kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    assert caught.value.response["Error"]["Code"] == "KMSInvalidStateException"


@pytest.mark.parametrize(
    "key_spec",
    [
        "RSA_2048",
        "RSA_3072",
        "RSA_4096",
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_SECG_P256K1",
    ],
)
def test_get_public_key_all_asymmetric_specs(kms: Any, key_spec: str) -> None:
    key_id = _key(kms, key_spec)
    response = kms.get_public_key(KeyId=key_id)
    assert response["KeySpec"] == key_spec
    assert response["KeyUsage"] == "SIGN_VERIFY"
    assert response["KeyId"] == key_id
    public_key = serialization.load_der_public_key(response["PublicKey"])
    if key_spec.startswith("RSA"):
        assert isinstance(public_key, rsa.RSAPublicKey)
        assert public_key.key_size == int(key_spec[4:])
    else:
        assert isinstance(public_key, ec.EllipticCurvePublicKey)


@mock_aws
def test_patch_works_in_decorator_mode() -> None:
    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    digest = hashlib.sha384(b"crl").digest()
    signature = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_384")[
        "Signature"
    ]
    _verify(kms.get_public_key(KeyId=key_id)["PublicKey"], signature, digest, "ECDSA_SHA_384", prehashed=True)


def test_symmetric_key_cannot_sign_or_give_a_public_key(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as caught:
        kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    assert caught.value.response["Error"]["Code"] == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as caught:
        kms.get_public_key(KeyId=key_id)
    assert caught.value.response["Error"]["Code"] == "UnsupportedOperationException"
