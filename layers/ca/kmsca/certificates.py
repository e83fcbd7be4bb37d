"""X.509 certificate building (RFC 5280) for the CA hierarchy and end entities.

cryptography builds every DER structure; the CA key's ``sign()`` goes to KMS (see
:mod:`kmsca.signer`). Each builder here makes one ``kms:Sign`` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ObjectIdentifier

from .profiles import SubjectPublicKey, key_usage_for
from .signer import CaPrivateKey, SignatureScheme

#: Clock skew allowance: every certificate the CA signs has not_before this much before the
#: moment of issuance (end-entity, CA and OCSP responder certificates alike).
BACKDATE = timedelta(minutes=5)
ROOT = "root"
ISSUING = "issuing"


@dataclass(frozen=True)
class PublicationUrls:
    """Where relying parties fetch a CA's certificate and CRL (public bucket objects).

    Attributes:
        base_url: ``PUBLIC_BASE_URL`` (no trailing slash).
        ocsp_url: the OCSP responder (``OCSP_URL``), or None when OCSP is off.
    """

    base_url: str
    ocsp_url: str | None = None

    def certificate_url(self, ca_name: str) -> str:
        return f"{self.base_url}/{ca_name}.crt"

    def crl_url(self, ca_name: str) -> str:
        return f"{self.base_url}/{ca_name}.crl"


def sign(builder: Any, private_key: CaPrivateKey, scheme: SignatureScheme) -> Any:
    """``builder.sign`` with the CA key's scheme (one ``kms:Sign`` for a KMS key)."""
    if scheme.rsa_padding is not None:
        return builder.sign(private_key, scheme.algorithm, rsa_padding=scheme.rsa_padding)
    return builder.sign(private_key, scheme.algorithm)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def issuer_pointer_extensions(issuer_name: str, urls: PublicationUrls | None) -> list[x509.ExtensionType]:
    """The CRL distribution point (RFC 5280 4.2.1.13) and AIA (4.2.2.1: the OCSP responder first,
    RFC 6960 3.1, when configured, then caIssuers) of a certificate issued by ``issuer_name``;
    empty without URLs. Bootstrap compares them with an existing issuing CA certificate's."""
    if urls is None:
        return []
    crl_dp = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(urls.crl_url(issuer_name))],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )
    descriptions = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(urls.certificate_url(issuer_name)),
        )
    ]
    if urls.ocsp_url:
        descriptions.insert(
            0, x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(urls.ocsp_url))
        )
    return [crl_dp, x509.AuthorityInformationAccess(descriptions)]


def pointer_extensions_of(certificate: x509.Certificate) -> list[x509.ExtensionType]:
    """The CRL distribution point and AIA of ``certificate``, in :func:`issuer_pointer_extensions` order."""
    found: list[x509.ExtensionType] = []
    for kind in (x509.CRLDistributionPoints, x509.AuthorityInformationAccess):
        try:
            found.append(certificate.extensions.get_extension_for_class(kind).value)
        except x509.ExtensionNotFound:
            pass
    return found


def _issuer_pointers(builder: Any, issuer_name: str, urls: PublicationUrls | None) -> Any:
    """Add :func:`issuer_pointer_extensions` (non-critical) to ``builder``."""
    for extension in issuer_pointer_extensions(issuer_name, urls):
        builder = builder.add_extension(extension, critical=False)
    return builder


def build_root_certificate(
    private_key: CaPrivateKey,
    scheme: SignatureScheme,
    subject: x509.Name,
    serial_number: int,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """Self-signed root CA certificate: basicConstraints CA (critical, no path length),
    keyUsage keyCertSign + cRLSign (critical), subjectKeyIdentifier (RFC 5280 4.2.1.2 method 1)."""
    public_key = private_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(serial_number)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return sign(builder, private_key, scheme)


def build_issuing_certificate(
    root_key: CaPrivateKey,
    root_scheme: SignatureScheme,
    root_certificate: x509.Certificate,
    public_key: CertificatePublicKeyTypes,
    subject: x509.Name,
    serial_number: int,
    not_before: datetime,
    not_after: datetime,
    urls: PublicationUrls | None,
) -> x509.Certificate:
    """Issuing CA certificate signed by the root: basicConstraints CA with pathLenConstraint 0
    (critical), keyUsage keyCertSign + cRLSign (critical), SKI, AKI = root SKI, and the root's CRL
    distribution point and AIA caIssuers when ``urls`` is given."""
    root_ski = root_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root_certificate.subject)
        .public_key(public_key)
        .serial_number(serial_number)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
    )
    builder = _issuer_pointers(builder, ROOT, urls)
    return sign(builder, root_key, root_scheme)


def build_end_entity_certificate(
    issuing_key: CaPrivateKey,
    issuing_scheme: SignatureScheme,
    issuing_certificate: x509.Certificate,
    public_key: SubjectPublicKey,
    subject: x509.Name,
    sans: Sequence[x509.GeneralName],
    extended_key_usages: Sequence[ObjectIdentifier],
    serial_number: int,
    not_before: datetime,
    not_after: datetime,
    urls: PublicationUrls | None,
) -> x509.Certificate:
    """End-entity certificate: basicConstraints CA:FALSE (critical), keyUsage digitalSignature
    (+ keyEncipherment for RSA; critical), EKU, SAN (critical when the subject is empty,
    RFC 5280 4.2.1.6), SKI, AKI = issuing CA SKI, CRL DP and AIA when ``urls`` is given.
    Nothing is copied from the CSR but the public key."""
    issuing_ski = issuing_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuing_certificate.subject)
        .public_key(public_key)
        .serial_number(serial_number)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage_for(public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(extended_key_usages)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuing_ski), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=not list(subject))
    builder = _issuer_pointers(builder, ISSUING, urls)
    return sign(builder, issuing_key, issuing_scheme)
