"""Certificate signing requests for the tests (PKCS #10, RFC 2986): a CSR from any key, as PEM."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID


def make_csr(
    key: Any,
    common_name: str | None = "device-1",
    sans: list[x509.GeneralName] | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> x509.CertificateSigningRequest:
    """A CSR for ``key`` with ``common_name`` (none if None) and ``sans``, signed with ``algorithm``
    (SHA-256 by default; no hash for keys that take none: ML-DSA, Ed25519)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if algorithm is None and not hasattr(key, "curve") and not hasattr(key, "key_size"):
        return builder.sign(key, None)  # ML-DSA, Ed25519
    chosen: Any = algorithm or hashes.SHA256()
    return builder.sign(key, chosen)


def csr_pem(csr: x509.CertificateSigningRequest) -> str:
    """The CSR as PEM text (what the issue function's ``csr`` field carries)."""
    return csr.public_bytes(serialization.Encoding.PEM).decode()
