"""Make moto's ACM ``ImportCertificate`` re-import and ``DescribeCertificate`` behave like AWS.

moto 5 re-imports into an existing ARN (``CertificateArn=...``) by building a fresh record, so:

- the certificate's **tags are lost** (AWS keeps them: tags are set on first import only, and
  IAM conditions such as ``aws:ResourceTag/managed-by`` rely on them surviving);
- **tags are accepted on re-import** (AWS: ``ValidationException: Tagging is not permitted on
  re-import.``);
- the **key type may change** (AWS: "The key type and size cannot be changed");
- ``InUseBy`` associations are dropped (AWS keeps them: that is the point of re-importing).

moto also never checks that the private key matches the certificate (AWS refuses a mismatch), and
``DescribeCertificate`` answers ``ExtendedKeyUsages: []``, no ``KeyUsages`` and a decimal
``Serial`` (AWS: the certificate's usages, and the serial as colon-separated hex).

:func:`patch_moto_acm` wraps ``AWSCertificateManagerBackend.import_certificate`` and
``CertBundle.describe``; it works for ``moto.mock_aws`` and moto in server mode alike and is
idempotent. :func:`unpatch_moto_acm` restores moto's methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from moto.acm.exceptions import AWSValidationException
from moto.acm.models import AWSCertificateManagerBackend, CertBundle

__all__ = ["key_algorithm", "patch_moto_acm", "unpatch_moto_acm"]

_ORIGINALS: dict[str, Callable[..., Any]] = {}

#: ACM's names for extended key usages (DescribeCertificate ``ExtendedKeyUsages[].Name``).
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "TLS_WEB_SERVER_AUTHENTICATION",
    ExtendedKeyUsageOID.CLIENT_AUTH: "TLS_WEB_CLIENT_AUTHENTICATION",
    ExtendedKeyUsageOID.CODE_SIGNING: "CODE_SIGNING",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "EMAIL_PROTECTION",
    ExtendedKeyUsageOID.TIME_STAMPING: "TIME_STAMPING",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSP_SIGNING",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "ANY",
}

#: cryptography KeyUsage attribute -> ACM's name (DescribeCertificate ``KeyUsages[].Name``).
_KU_NAMES = {
    "digital_signature": "DIGITAL_SIGNATURE",
    "content_commitment": "NON_REPUDIATION",
    "key_encipherment": "KEY_ENCIPHERMENT",
    "data_encipherment": "DATA_ENCIPHERMENT",
    "key_agreement": "KEY_AGREEMENT",
    "key_cert_sign": "CERTIFICATE_SIGNING",
    "crl_sign": "CRL_SIGNING",
}


def key_algorithm(public_key: Any) -> str:
    """ACM's ``KeyAlgorithm`` name of a key (public or private): RSA_2048, EC_prime256v1, ..."""
    if isinstance(public_key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"RSA_{public_key.key_size}"
    if isinstance(public_key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        name = {"secp256r1": "prime256v1"}.get(public_key.curve.name, public_key.curve.name)
        return f"EC_{name}"
    return type(public_key).__name__


def _public_der(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _parse(certificate: bytes, private_key: bytes) -> tuple[x509.Certificate, Any] | None:
    """(certificate, private key), or None when either does not parse (moto then refuses it)."""
    try:
        cert = x509.load_pem_x509_certificate(certificate)
        key = serialization.load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError):
        return None
    return cert, key


def _import_certificate(
    self: AWSCertificateManagerBackend,
    certificate: bytes,
    private_key: bytes,
    chain: bytes | None,
    arn: str | None,
    tags: list[dict[str, str]] | None,
) -> str:
    """moto's import, plus AWS's checks and what a re-import keeps (tags, InUseBy, options)."""
    if arn is not None and tags:
        raise AWSValidationException("Tagging is not permitted on re-import.")
    previous = self._certificates.get(arn) if arn is not None else None
    parsed = _parse(certificate, private_key)
    if parsed is not None:
        cert, key = parsed
        if _public_der(cert.public_key()) != _public_der(key.public_key()):
            raise AWSValidationException("The private key does not match the public key in the certificate.")
        if previous is not None:
            old_algorithm = key_algorithm(previous._key)
            new_algorithm = key_algorithm(key)
            if old_algorithm != new_algorithm:
                raise AWSValidationException(
                    f"The key algorithm of the certificate being imported ({new_algorithm}) must match the "
                    f"key algorithm of the certificate it replaces ({old_algorithm})."
                )
    new_arn: str = _ORIGINALS["import_certificate"](self, certificate, private_key, chain, arn, tags)
    if previous is not None:
        bundle = self._certificates[new_arn]
        bundle.tags = previous.tags
        bundle.in_use_by = previous.in_use_by
        bundle.cert_options = previous.cert_options
    return new_arn


def _usages(cert: x509.Certificate) -> dict[str, list[dict[str, str]]]:
    result: dict[str, list[dict[str, str]]] = {"ExtendedKeyUsages": [], "KeyUsages": []}
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    for oid in eku or []:
        result["ExtendedKeyUsages"].append({"Name": _EKU_NAMES.get(oid, "CUSTOM"), "OID": oid.dotted_string})
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is not None:
        for attribute, name in _KU_NAMES.items():
            if getattr(ku, attribute):
                result["KeyUsages"].append({"Name": name})
        if ku.key_agreement:
            if ku.encipher_only:
                result["KeyUsages"].append({"Name": "ENCIPHER_ONLY"})
            if ku.decipher_only:
                result["KeyUsages"].append({"Name": "DECIPHER_ONLY"})
    return result


def _colon_hex(serial: int) -> str:
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return ":".join(f"{b:02x}" for b in raw)


def _describe(self: CertBundle) -> dict[str, Any]:
    """moto's description with the certificate's key usages and AWS's serial format."""
    result: dict[str, Any] = _ORIGINALS["describe"](self)
    details = result["Certificate"]
    details.update(_usages(self._cert))
    details["Serial"] = _colon_hex(self._cert.serial_number)
    return result


_TARGETS: dict[str, tuple[type, Callable[..., Any]]] = {
    "import_certificate": (AWSCertificateManagerBackend, _import_certificate),
    "describe": (CertBundle, _describe),
}


def patch_moto_acm() -> None:
    """Apply the patch (idempotent; every moto use in the process)."""
    for name, (owner, replacement) in _TARGETS.items():
        current = getattr(owner, name)
        if current is replacement:
            continue
        _ORIGINALS.setdefault(name, current)
        setattr(owner, name, replacement)


def unpatch_moto_acm() -> None:
    """Restore moto's own methods (for tests of the patch itself)."""
    for name, original in list(_ORIGINALS.items()):
        owner, _ = _TARGETS[name]
        setattr(owner, name, original)
        del _ORIGINALS[name]
