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

Import rules moto does not check, refused with ``ValidationException`` (ACM User Guide,
"Prerequisites for importing ACM certificates"; ACM API Reference, ``ImportCertificate``; ACM User
Guide, "Certificate import problems"; CloudFront Developer Guide, "Certificate management with
AWS Certificate Manager" for origin mTLS). Where AWS's wording is not documented the message says
what was refused.

- The private key must be **unencrypted** and **at most 5 KB (5,120 bytes)** of PEM.
- The certificate must contain an **FQDN or an IP address**. The docs do not say how ACM finds
  it; modelled as: a DNS or IP subjectAlternativeName, or a subject common name that is an IP
  address or a domain name of at least two dot-separated LDH labels (``*.`` allowed).
- A certificate that is not self-issued needs a **chain**, and "the issuer must be the subject of
  one of the certificates in the chain".
- The chain must **not include the certificate** being imported ("Do not include your end-entity
  certificate in the intermediate certificate chain").
- **Chain depth at most 3**: CloudFront origin mTLS (the only use of ACM here) accepts a
  "maximum certificate chain depth: 3 (leaf + intermediate + root)", so ``CertificateChain`` may
  hold at most 2 certificates. ACM's own pages give no depth limit: this rule is CloudFront's,
  enforced at import because this project imports only for CloudFront.
- "The cryptographic algorithm of an imported certificate must match the algorithm of the signing
  CA": the **key algorithm family** (RSA or EC) of the certificate must be the one of its signing
  CA, the first chain certificate whose subject is the certificate's issuer (an RSA leaf under an
  EC issuing CA is refused, and EC under RSA).

moto itself already refuses a certificate that is not valid at import time (``notBefore`` in the
future, ``notAfter`` in the past): "The certificate has expired, is not valid." / "The certificate
is not in effect yet, is not valid."; that check is left to moto.

:func:`patch_moto_acm` wraps ``AWSCertificateManagerBackend.import_certificate`` and
``CertBundle.describe``; it works for ``moto.mock_aws`` and moto in server mode alike and is
idempotent. :func:`unpatch_moto_acm` restores moto's methods.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from moto.acm.exceptions import AWSValidationException
from moto.acm.models import AWSCertificateManagerBackend, CertBundle

__all__ = [
    "MAX_CHAIN_CERTIFICATES",
    "MAX_PRIVATE_KEY_BYTES",
    "key_algorithm",
    "patch_moto_acm",
    "unpatch_moto_acm",
]

#: Largest private key ACM imports, in bytes of PEM ("no larger than 5 KB (5,120 bytes)").
MAX_PRIVATE_KEY_BYTES = 5120
#: Most certificates in ``CertificateChain``: CloudFront origin mTLS chain depth 3 = leaf + 2.
MAX_CHAIN_CERTIFICATES = 2

_ENCRYPTED_PEM = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,\s*ENCRYPTED")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

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


def _check_private_key(private_key: bytes) -> None:
    """The key is unencrypted PEM of at most 5,120 bytes."""
    if len(private_key) > MAX_PRIVATE_KEY_BYTES:
        raise AWSValidationException(
            f"The private key is {len(private_key)} bytes; ACM imports private keys of at most "
            f"{MAX_PRIVATE_KEY_BYTES} bytes (5 KB)."
        )
    if _ENCRYPTED_PEM.search(private_key):
        raise AWSValidationException(
            "The private key is encrypted; ACM imports only unencrypted private keys (no password or passphrase)."
        )


def _algorithm_family(public_key: Any) -> str | None:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC"
    return None


def _is_domain_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    if labels[0] == "*":
        labels = labels[1:]
    return len(labels) >= 2 and all(_DNS_LABEL.match(label) for label in labels)


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _names_a_host(cert: x509.Certificate) -> bool:
    """True when the certificate carries an FQDN or an IP address (SAN, else the common name)."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = None
    if sans is not None and (sans.get_values_for_type(x509.DNSName) or sans.get_values_for_type(x509.IPAddress)):
        return True
    for attribute in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.decode("utf-8", "replace")
        if _is_ip_address(value) or _is_domain_name(value):
            return True
    return False


def _check_chain(cert: x509.Certificate, chain: bytes | None) -> None:
    """Chain present for a CA-signed certificate, without the certificate, at most 2 deep, holding
    the issuer, whose key algorithm family is the certificate's."""
    self_issued = cert.issuer == cert.subject
    try:
        chain_certs = x509.load_pem_x509_certificates(chain) if chain and chain.strip() else []
    except ValueError:
        return  # moto refuses a chain that does not parse
    if not chain_certs:
        if not self_issued:
            raise AWSValidationException(
                "Provided certificate is not a valid self signed. Please provide either a valid self-signed "
                "certificate or certificate chain."
            )
        return
    if any(member == cert for member in chain_certs):
        raise AWSValidationException("The certificate chain must not include the certificate being imported.")
    if len(chain_certs) > MAX_CHAIN_CERTIFICATES:
        raise AWSValidationException(
            f"The certificate chain holds {len(chain_certs)} certificates; at most {MAX_CHAIN_CERTIFICATES} "
            "(intermediate and root: a chain depth of 3 with the certificate) are accepted."
        )
    if self_issued:
        return
    signer = next((member for member in chain_certs if member.subject == cert.issuer), None)
    if signer is None:
        raise AWSValidationException(
            "Could not validate the certificate with the certificate chain: no certificate in the chain "
            f"has the subject {cert.issuer.rfc4514_string()!r} (the certificate's issuer)."
        )
    mine, theirs = _algorithm_family(cert.public_key()), _algorithm_family(signer.public_key())
    if mine is not None and theirs is not None and mine != theirs:
        raise AWSValidationException(
            "The cryptographic algorithm of an imported certificate must match the algorithm of the signing CA: "
            f"the certificate's key is {key_algorithm(cert.public_key())}, the signing CA's "
            f"({signer.subject.rfc4514_string()}) is {key_algorithm(signer.public_key())}."
        )


def _check_import(cert: x509.Certificate, chain: bytes | None) -> None:
    """ACM's import rules on the certificate and its chain (see the module docstring)."""
    if not _names_a_host(cert):
        raise AWSValidationException(
            "The certificate must contain a fully qualified domain name (FQDN) or an IP address: it has no DNS "
            "or IP subject alternative name and its common name is neither."
        )
    _check_chain(cert, chain)


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
    _check_private_key(private_key)
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
        _check_import(cert, chain)
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
