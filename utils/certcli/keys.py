"""Key pairs the client and server tools generate locally, and the PKCS#10 CSR signed by them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .errors import Refused
from .names import RequestedSubject, San

# Union, not "|": a type alias is evaluated at run time, and "|" between classes needs Python 3.10.
PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]


@dataclass(frozen=True)
class KeyType:
    """A key type the tools can generate.

    Attributes:
        name: command-line name (``ec-p256``).
        description: for ``--help``.
        generate: makes a new private key.
        csr_hash: hash the CSR is signed with (matches the key strength).
    """

    name: str
    description: str
    generate: Callable[[], PrivateKey]
    csr_hash: Callable[[], hashes.SHA256 | hashes.SHA384]


def _ec(curve: ec.EllipticCurve) -> Callable[[], PrivateKey]:
    return lambda: ec.generate_private_key(curve)


def _rsa(bits: int) -> Callable[[], PrivateKey]:
    return lambda: rsa.generate_private_key(public_exponent=65537, key_size=bits)


KEY_TYPES: dict[str, KeyType] = {
    kt.name: kt
    for kt in (
        KeyType("ec-p256", "ECDSA P-256", _ec(ec.SECP256R1()), hashes.SHA256),
        KeyType("ec-p384", "ECDSA P-384", _ec(ec.SECP384R1()), hashes.SHA384),
        KeyType("rsa-2048", "RSA 2048 bits", _rsa(2048), hashes.SHA256),
        KeyType("rsa-3072", "RSA 3072 bits", _rsa(3072), hashes.SHA256),
        KeyType("rsa-4096", "RSA 4096 bits", _rsa(4096), hashes.SHA256),
    )
}
DEFAULT_KEY_TYPE = "ec-p256"


def generate_private_key(key_type: str) -> PrivateKey:
    """Generate a new private key of ``key_type`` (a key of :data:`KEY_TYPES`).

    Raises:
        Refused: unknown key type (code ``InvalidArgument``).
    """
    try:
        return KEY_TYPES[key_type].generate()
    except KeyError:
        raise Refused("InvalidArgument", f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}") from None


def build_csr(
    key: PrivateKey, key_type: str, subject: RequestedSubject, sans: Sequence[San]
) -> x509.CertificateSigningRequest:
    """Build a PKCS#10 CSR (RFC 2986) for ``key``, signed by ``key``.

    The CSR carries the subject and, when there are SANs, a subjectAltName extension. It asks
    for nothing else: key usage and EKU come from the CA's profile, not from the request.

    Raises:
        Refused: ``InvalidSubject`` for a malformed subject attribute.
    """
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject.to_name())
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([s.to_general_name() for s in sans]), critical=False
        )
    return builder.sign(key, KEY_TYPES[key_type].csr_hash())
