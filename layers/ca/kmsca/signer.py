"""CA private keys that live in AWS KMS.

Each class implements one of pyca/cryptography's private-key interfaces, so the ordinary
``CertificateBuilder.sign()`` / ``CertificateRevocationListBuilder.sign()`` build every DER
structure, while the signature itself comes from ``kms:Sign``:

- ECDSA and RSA: the data is hashed locally and sent with ``MessageType=DIGEST``, so there is
  no 4,096-byte limit (CRLs of any size) and only a digest leaves the function.
- ML-DSA (FIPS 204): the external mu (64 bytes, computed locally with the KMS key's public key)
  is sent with ``MessageType=EXTERNAL_MU`` and ``SigningAlgorithm=ML_DSA_SHAKE_256``.

The public key is fetched once (``kms:GetPublicKey``) when the key object is loaded; build the
object at cold start and reuse it. Private-key export is impossible by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, padding, rsa, utils
from cryptography.utils import Buffer

from .aws_errors import translating
from .errors import UnsupportedCaKey
from .settings import SigningSettings

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}
# The hash that matches each curve (FIPS 186-5 / RFC 5480 section 4): P-256 -> SHA-256, ...
_CURVE_HASH: dict[str, str] = {"secp256r1": "SHA_256", "secp384r1": "SHA_384", "secp521r1": "SHA_512"}
_KMS_EC_SPECS = {"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"}
_KMS_RSA_SPECS = {"RSA_2048", "RSA_3072", "RSA_4096"}


def _hash_name(algorithm: hashes.HashAlgorithm) -> str:
    name = algorithm.name.upper().replace("SHA", "SHA_")
    if name not in _HASHES:
        raise ValueError(f"hash {algorithm.name} is not supported by KMS signing")
    return name


def _digest(data: Buffer, algorithm: hashes.HashAlgorithm | utils.Prehashed) -> tuple[bytes, str]:
    """Return (digest, KMS hash suffix) for data to be signed with ``algorithm``."""
    if isinstance(algorithm, utils.Prehashed):
        return bytes(data), _hash_name(algorithm._algorithm)
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize(), _hash_name(algorithm)


@dataclass
class _KmsKey:
    """The KMS side shared by every key type: the client and the key id; it signs."""

    kms: KMSClient
    key_id: str

    def kms_sign(self, message: bytes, message_type: str, signing_algorithm: str) -> bytes:
        """One ``kms:Sign``; a KMS failure raises :class:`~kmsca.errors.AwsCallFailed`."""
        with translating("kms", "Sign"):
            response = self.kms.sign(
                KeyId=self.key_id,
                Message=message,
                MessageType=message_type,
                SigningAlgorithm=signing_algorithm,
            )
        return response["Signature"]


class KmsEllipticCurvePrivateKey(ec.EllipticCurvePrivateKey):
    """An ECDSA key (P-256, P-384, P-521) held in KMS. ``sign`` calls ``kms:Sign`` with a digest."""

    def __init__(self, kms_key: _KmsKey, public_key: ec.EllipticCurvePublicKey) -> None:
        self._kms_key = kms_key
        self._public_key = public_key

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise ValueError("KMS EC keys sign ECDSA only")
        digest, hash_name = _digest(data, signature_algorithm.algorithm)
        return self._kms_key.kms_sign(digest, "DIGEST", f"ECDSA_{hash_name}")

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public_key

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public_key.curve

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise NotImplementedError("a KMS signing key cannot do key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise NotImplementedError("a KMS key never leaves KMS")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise NotImplementedError("a KMS key never leaves KMS")

    def __copy__(self) -> KmsEllipticCurvePrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> KmsEllipticCurvePrivateKey:
        return self


class KmsRsaPrivateKey(rsa.RSAPrivateKey):
    """An RSA key (2048, 3072, 4096 bits) held in KMS; PKCS#1 v1.5 or PSS (salt = digest length)."""

    def __init__(self, kms_key: _KmsKey, public_key: rsa.RSAPublicKey) -> None:
        self._kms_key = kms_key
        self._public_key = public_key

    def sign(
        self,
        data: Buffer,
        padding_: padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | utils.Prehashed | utils.NoDigestInfo,
    ) -> bytes:
        if isinstance(algorithm, utils.NoDigestInfo):
            raise ValueError("KMS signs a DigestInfo; raw RSA signatures are not supported")
        digest, hash_name = _digest(data, algorithm)
        if isinstance(padding_, padding.PKCS1v15):
            scheme = "RSASSA_PKCS1_V1_5"
        elif isinstance(padding_, padding.PSS):
            # KMS uses a salt as long as the digest and MGF1 with the same hash (KMS Developer Guide).
            salt = padding_._salt_length
            digest_length = _HASHES[hash_name].digest_size
            if not (isinstance(salt, padding._DigestLength) or salt == digest_length):
                raise ValueError("KMS RSASSA-PSS signs with salt length = digest length only")
            scheme = "RSASSA_PSS"
        else:
            raise ValueError(f"padding {padding_.name} is not supported by KMS")
        return self._kms_key.kms_sign(digest, "DIGEST", f"{scheme}_{hash_name}")

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public_key

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise NotImplementedError("a CA signing key does not decrypt")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise NotImplementedError("a KMS key never leaves KMS")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise NotImplementedError("a KMS key never leaves KMS")

    def __copy__(self) -> KmsRsaPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> KmsRsaPrivateKey:
        return self


class _KmsMlDsaMixin:
    """ML-DSA signing through KMS with ``MessageType=EXTERNAL_MU`` (FIPS 204, external mu)."""

    def __init__(self, kms_key: _KmsKey, public_key: Any) -> None:
        self._kms_key = kms_key
        self._public_key = public_key

    def sign(self, data: Buffer, context: Buffer | None = None) -> bytes:
        hasher = mldsa.MLDSAMuHasher(self._public_key, context)
        hasher.update(data)
        return self.sign_mu(hasher.finalize())

    def sign_mu(self, mu: Buffer) -> bytes:
        return self._kms_key.kms_sign(bytes(mu), "EXTERNAL_MU", "ML_DSA_SHAKE_256")

    def public_key(self) -> Any:
        return self._public_key

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise NotImplementedError("a KMS key never leaves KMS")

    def private_bytes_raw(self) -> bytes:
        raise NotImplementedError("a KMS key never leaves KMS")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


class KmsMlDsa44PrivateKey(_KmsMlDsaMixin, mldsa.MLDSA44PrivateKey):
    """An ML-DSA-44 key held in KMS."""


class KmsMlDsa65PrivateKey(_KmsMlDsaMixin, mldsa.MLDSA65PrivateKey):
    """An ML-DSA-65 key held in KMS."""


class KmsMlDsa87PrivateKey(_KmsMlDsaMixin, mldsa.MLDSA87PrivateKey):
    """An ML-DSA-87 key held in KMS."""


_MLDSA: dict[type, type] = {
    mldsa.MLDSA44PublicKey: KmsMlDsa44PrivateKey,
    mldsa.MLDSA65PublicKey: KmsMlDsa65PrivateKey,
    mldsa.MLDSA87PublicKey: KmsMlDsa87PrivateKey,
}

CaPrivateKey = (
    KmsEllipticCurvePrivateKey | KmsRsaPrivateKey | mldsa.MLDSA44PrivateKey
    | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
)


@dataclass(frozen=True)
class SignatureScheme:
    """What to pass to cryptography's builders' ``sign(private_key, algorithm, rsa_padding=...)``.

    Attributes:
        algorithm: the hash (None for ML-DSA, which hashes internally).
        rsa_padding: ``padding.PSS`` for RSA-PSS, else None (PKCS#1 v1.5 or not RSA).
    """

    algorithm: hashes.HashAlgorithm | None
    rsa_padding: padding.PSS | None = None


def load_kms_private_key(kms: KMSClient, key_id: str) -> CaPrivateKey:
    """Load a KMS signing key as a cryptography private key (one ``kms:GetPublicKey`` call).

    Args:
        kms: boto3 KMS client.
        key_id: key id, key ARN, alias name or alias ARN.

    Returns:
        A private-key object whose ``sign()`` calls ``kms:Sign``.

    Raises:
        UnsupportedCaKey: not a SIGN_VERIFY key, or a key spec a CA cannot use (ECC_SECG_P256K1,
            ECC_NIST_EDWARDS25519, SM2).
        AwsCallFailed: KMS refused (missing key, no permission) or failed.
    """
    with translating("kms", "GetPublicKey"):
        response = kms.get_public_key(KeyId=key_id)
    if response.get("KeyUsage") != "SIGN_VERIFY":
        raise UnsupportedCaKey(
            f"KMS key {key_id} is not a SIGN_VERIFY key", key_id=key_id, key_usage=str(response.get("KeyUsage"))
        )
    spec = response.get("KeySpec", "")
    public_key = serialization.load_der_public_key(response["PublicKey"])
    kms_key = _KmsKey(kms, response.get("KeyId", key_id))
    if spec in _KMS_EC_SPECS and isinstance(public_key, ec.EllipticCurvePublicKey):
        return KmsEllipticCurvePrivateKey(kms_key, public_key)
    if spec in _KMS_RSA_SPECS and isinstance(public_key, rsa.RSAPublicKey):
        return KmsRsaPrivateKey(kms_key, public_key)
    for public_class, private_class in _MLDSA.items():
        if spec.startswith("ML_DSA_") and isinstance(public_key, public_class):
            return private_class(kms_key, public_key)
    raise UnsupportedCaKey(
        f"KMS key {key_id} has key spec {spec!r}, which this CA cannot sign with", key_id=key_id, key_spec=spec
    )


def signature_scheme(private_key: CaPrivateKey, signing: SigningSettings) -> SignatureScheme:
    """Choose the signature scheme for a CA key.

    EC keys use the hash matching the curve (P-256: SHA-256, P-384: SHA-384, P-521: SHA-512);
    RSA keys use ``signing.rsa_hash`` with PKCS#1 v1.5 or PSS (``signing.rsa_padding``);
    ML-DSA takes no separate hash.
    """
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return SignatureScheme(_HASHES[_CURVE_HASH[private_key.curve.name]]())
    if isinstance(private_key, rsa.RSAPrivateKey):
        algorithm = _HASHES[signing.rsa_hash]()
        if signing.rsa_padding == "PSS":
            pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
            return SignatureScheme(algorithm, pss)
        return SignatureScheme(algorithm)
    return SignatureScheme(None)
