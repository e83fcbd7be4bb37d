"""Make moto's KMS ``Sign``, ``Verify`` and ``GetPublicKey`` behave like AWS KMS.

moto 5 gets asymmetric signing wrong in ways that matter to a certificate authority:

- ``MessageType=DIGEST`` is ignored: the digest is hashed again and the result is a
  signature over ``H(H(m))``, which no verifier accepts.
- RSASSA-PSS uses the maximum salt length; AWS KMS uses salt length = digest length.
- ``GetPublicKey`` has no ``KeySpec`` field (only the deprecated ``CustomerMasterKeySpec``).
- ``Verify`` answers ``SignatureValid: false``; AWS raises ``KMSInvalidSignatureException``.

:func:`patch_moto_kms` replaces the three response methods of
``moto.kms.responses.KmsResponse``, so it works for ``moto.mock_aws`` (decorator or
context manager) and for moto in server mode alike. It reuses moto's key objects:
``key.private_key.private_key`` is the pyca/cryptography private key.

ML-DSA (``ML_DSA_*`` keys, ``MessageType=EXTERNAL_MU``) is refused with a
``ValidationException`` naming the limitation: moto cannot create ML-DSA keys.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from moto.core.exceptions import JsonRESTError
from moto.kms.exceptions import ValidationException
from moto.kms.responses import KmsResponse

__all__ = ["MAX_RAW_MESSAGE_BYTES", "patch_moto_kms", "unpatch_moto_kms"]

#: Longest ``Message`` AWS KMS accepts with ``MessageType=RAW``, in bytes.
MAX_RAW_MESSAGE_BYTES = 4096

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}

_ORIGINALS: dict[str, Callable[..., Any]] = {}


class _KmsError(JsonRESTError):
    """A KMS error moto has no class for: KMSInvalidSignatureException (Verify with a bad
    signature), KMSInvalidStateException (key not enabled), InvalidKeyUsageException,
    UnsupportedOperationException (GetPublicKey of a symmetric key)."""

    code = 400

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(error_type, message)


def _scheme(signing_algorithm: str) -> tuple[str, hashes.HashAlgorithm]:
    """Split a KMS signing algorithm into ("ECDSA" | "PKCS1" | "PSS", hash instance)."""
    for prefix, scheme in (
        ("ECDSA_", "ECDSA"),
        ("RSASSA_PKCS1_V1_5_", "PKCS1"),
        ("RSASSA_PSS_", "PSS"),
    ):
        if signing_algorithm.startswith(prefix):
            hash_name = signing_algorithm[len(prefix) :]
            if hash_name in _HASHES:
                return scheme, _HASHES[hash_name]()
    raise ValidationException(
        f"1 validation error detected: Value '{signing_algorithm}' at 'SigningAlgorithm' "
        "failed to satisfy constraint: the local sandbox supports ECDSA_SHA_*, "
        "RSASSA_PKCS1_V1_5_SHA_* and RSASSA_PSS_SHA_* only"
    )


def _request(response: KmsResponse, action: str) -> dict[str, Any]:
    """Parse a Sign/Verify request into {key, message (bytes), message_type, algorithm, ...}.

    Validates like AWS: key exists, is enabled and SIGN_VERIFY, the algorithm belongs to
    the key, MessageType is RAW (<= 4096 bytes) or DIGEST (length = hash length).
    """
    params: dict[str, Any] = json.loads(response.body or "{}")
    key_id: str = params.get("KeyId", "")
    response._validate_key_id(key_id)
    key = response.kms_backend.describe_key(key_id)
    message = base64.b64decode(params.get("Message", ""))
    message_type: str = params.get("MessageType") or "RAW"
    algorithm: str = params.get("SigningAlgorithm", "")

    if message_type == "EXTERNAL_MU" or algorithm.startswith("ML_DSA") or str(key.key_spec).startswith("ML_DSA"):
        raise ValidationException(
            "ML-DSA signing (MessageType=EXTERNAL_MU, SigningAlgorithm=ML_DSA_SHAKE_256) "
            "is not available in the local sandbox: moto cannot create ML-DSA KMS keys. "
            "Test ML-DSA with an in-memory signer instead."
        )
    if message_type not in ("RAW", "DIGEST"):
        raise ValidationException(
            f"1 validation error detected: Value '{message_type}' at 'messageType' failed "
            "to satisfy constraint: Member must satisfy enum value set: [RAW, DIGEST, EXTERNAL_MU]"
        )
    if not message:
        raise ValidationException(
            "1 validation error detected: Value at 'message' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    if key.key_state != "Enabled":
        raise _KmsError("KMSInvalidStateException", f"{key.arn} is {key.key_state.lower()}.")
    if key.key_usage != "SIGN_VERIFY":
        raise _KmsError(
            "InvalidKeyUsageException", f"{key.arn} key usage is {key.key_usage} which is not valid for {action}."
        )
    if algorithm not in (key.signing_algorithms or []):
        raise ValidationException(
            f"1 validation error detected: Value '{algorithm}' at 'SigningAlgorithm' failed "
            f"to satisfy constraint: Member must satisfy enum value set: {key.signing_algorithms}"
        )
    scheme, hash_algorithm = _scheme(algorithm)
    if message_type == "RAW" and len(message) > MAX_RAW_MESSAGE_BYTES:
        raise ValidationException(
            "1 validation error detected: Value at 'message' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_RAW_MESSAGE_BYTES}"
        )
    if message_type == "DIGEST" and len(message) != hash_algorithm.digest_size:
        raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
    return {
        "params": params,
        "key": key,
        "message": message,
        "message_type": message_type,
        "algorithm": algorithm,
        "scheme": scheme,
        "hash": hash_algorithm,
    }


def _hash_arg(req: dict[str, Any]) -> hashes.HashAlgorithm | utils.Prehashed:
    """The hash argument for cryptography: Prehashed for DIGEST, the hash for RAW."""
    if req["message_type"] == "DIGEST":
        return utils.Prehashed(req["hash"])
    return req["hash"]


def _padding(req: dict[str, Any]) -> padding.AsymmetricPadding:
    if req["scheme"] == "PSS":
        return padding.PSS(mgf=padding.MGF1(req["hash"]), salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PKCS1v15()


def _sign(self: KmsResponse) -> str:
    """KMS ``Sign`` as AWS does it; returns the JSON response body."""
    req = _request(self, "Sign")
    private_key = req["key"].private_key.private_key
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        signature = private_key.sign(req["message"], ec.ECDSA(_hash_arg(req)))
    elif isinstance(private_key, rsa.RSAPrivateKey):
        signature = private_key.sign(req["message"], _padding(req), _hash_arg(req))
    else:  # pragma: no cover - moto only makes RSA and EC signing keys
        raise ValidationException(f"Unsupported key type {type(private_key).__name__}")
    return json.dumps(
        {
            "KeyId": req["key"].arn,
            "Signature": base64.b64encode(signature).decode("ascii"),
            "SigningAlgorithm": req["algorithm"],
        }
    )


def _verify(self: KmsResponse) -> str:
    """KMS ``Verify`` as AWS does it; raises KMSInvalidSignatureException on mismatch."""
    req = _request(self, "Verify")
    signature = base64.b64decode(req["params"].get("Signature", ""))
    if not signature:
        raise ValidationException(
            "1 validation error detected: Value at 'signature' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    public_key = req["key"].private_key.private_key.public_key()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, req["message"], ec.ECDSA(_hash_arg(req)))
        else:
            public_key.verify(signature, req["message"], _padding(req), _hash_arg(req))
    except InvalidSignature:
        raise _KmsError("KMSInvalidSignatureException", "") from None
    return json.dumps(
        {
            "KeyId": req["key"].arn,
            "SignatureValid": True,
            "SigningAlgorithm": req["algorithm"],
        }
    )


def _get_public_key(self: KmsResponse) -> str:
    """KMS ``GetPublicKey`` with ``KeySpec`` and the key ARN, as AWS returns them."""
    key_id: str = self._get_param("KeyId")
    self._validate_key_id(key_id)
    key = self.kms_backend.describe_key(key_id)
    inner = getattr(key.private_key, "private_key", None)
    asymmetric = str(key.key_spec).startswith(("RSA_", "ECC_"))
    if not asymmetric or not isinstance(inner, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise _KmsError("UnsupportedOperationException", f"{key.arn} key usage is {key.key_usage}; no public key.")
    der = inner.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    body: dict[str, Any] = {
        "KeyId": key.arn,
        "PublicKey": base64.b64encode(der).decode("ascii"),
        "KeySpec": key.key_spec,
        "CustomerMasterKeySpec": key.key_spec,
        "KeyUsage": key.key_usage,
    }
    if key.key_usage == "SIGN_VERIFY":
        body["SigningAlgorithms"] = key.signing_algorithms
    elif key.encryption_algorithms:
        body["EncryptionAlgorithms"] = key.encryption_algorithms
    return json.dumps(body)


_REPLACEMENTS: dict[str, Callable[..., Any]] = {
    "sign": _sign,
    "verify": _verify,
    "get_public_key": _get_public_key,
}


def patch_moto_kms() -> None:
    """Replace moto's KMS Sign/Verify/GetPublicKey with AWS-faithful versions.

    Idempotent; affects every moto use in the process (``mock_aws`` and server mode).
    """
    for name, replacement in _REPLACEMENTS.items():
        current = getattr(KmsResponse, name)
        if current is replacement:
            continue
        _ORIGINALS.setdefault(name, current)
        setattr(KmsResponse, name, replacement)


def unpatch_moto_kms() -> None:
    """Restore moto's own methods (for tests of the patch itself)."""
    for name, original in list(_ORIGINALS.items()):
        setattr(KmsResponse, name, original)
        del _ORIGINALS[name]
