"""The OCSP responder service: which CA a request names, the certificate's status, who signs.

Signing without a KMS call per response (RFC 6960 4.2.2.2, delegated responder): the responder
makes an EC P-256 key pair in memory and has the **issuing CA** certify it through KMS (one
``kms:Sign``) as a responder certificate with EKU id-kp-OCSPSigning, id-pkix-ocsp-nocheck and a
lifetime of :data:`RESPONDER_LIFETIME`; it is renewed when less than :data:`RENEW_BEFORE` is left.
The key is never stored or logged and dies with the container.

Requests about the issuing CA certificate itself (issuer = the root) are answered with a response
the **root** signed beforehand (the CRL publication function, which holds the root key, pre-signs
it with the root CRL; see :func:`presign_ca_status`) and this function only serves: the
internet-facing responder never holds root signing rights.

Statuses come from the table with a strongly consistent GetItem, so a revocation is answered
``revoked`` as soon as the revoke function has returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .ca import CaSigner
from .certificates import BACKDATE, ISSUING, ROOT, sign
from .ocsp import (
    SUPPORTED_HASHES,
    CertificateQuery,
    CertificateStatus,
    OcspRefusal,
    Signer,
    build_response,
    issuer_hashes,
    request_from_http,
)
from .ocsp_presigned import S3PresignedSource as S3PresignedSource  # the S3 adapter, re-exported
from .records import STATUS_REVOKED
from .serial import serial_to_hex
from .store import Certificates

#: Lifetime of a delegated responder certificate (about a day, as the issue asks).
RESPONDER_LIFETIME = timedelta(hours=24)
#: Renew the responder certificate when less than this is left (must exceed the response validity).
RENEW_BEFORE = timedelta(hours=6)
#: Key of the root-signed response about issuing CA certificate ``serial`` for CertID hash ``h``.
PRESIGNED_KEY = "ocsp/root-signed/{serial}.{hash}.der"


@dataclass(frozen=True)
class OcspAnswer:
    """One HTTP answer of the responder.

    Attributes:
        body: DER OCSPResponse (successful or an error status).
        status: ``successful`` or the error status name, for metrics.
        this_update, next_update: of the single response, or None for an error.
        cert_status: ``good``, ``revoked``, ``unknown`` or None for an error.
    """

    body: bytes
    status: str
    this_update: datetime | None = None
    next_update: datetime | None = None
    cert_status: str | None = None


class PresignedSource(Protocol):
    """Where root-signed responses about the issuing CA are kept (the internal bucket)."""

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""


def issue_responder_certificate(ca: CaSigner, now: datetime, lifetime: timedelta = RESPONDER_LIFETIME) -> Signer:
    """Make a responder key in memory and have the CA certify it (one ``kms:Sign``).

    The certificate (RFC 6960 4.2.2.2): subject CN ``<CA CN> OCSP Responder``, basicConstraints
    CA:FALSE, keyUsage digitalSignature (critical), EKU id-kp-OCSPSigning, id-pkix-ocsp-nocheck
    (4.2.2.2.1), SKI, AKI = the CA's SKI, validity ``now - 5 min`` to ``now + lifetime``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = ca.record.certificate
    common_name = issuer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = (str(common_name[0].value) if common_name else "CA")[:48] + " OCSP Responder"
    ca_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    return Signer(sign(builder, ca.private_key, ca.scheme), key, hashes.SHA256())


def presign_ca_status(
    root: CaSigner, issuing: x509.Certificate, this_update: datetime, next_update: datetime
) -> dict[str, bytes]:
    """Root-signed ``good`` responses about the issuing CA certificate, one per CertID hash.

    Signed by the root CA itself (RFC 6960 4.2.2.2, the CA as responder; ResponderID byKey, no
    certificates): one ``kms:Sign`` per hash. Returns object key -> DER (:data:`PRESIGNED_KEY`).
    """
    signer = Signer(root.record.certificate, root.private_key, root.scheme.algorithm)
    responses = {}
    for hash_name in SUPPORTED_HASHES:
        name_hash, key_hash = issuer_hashes(root.record.certificate, hash_name)
        query = CertificateQuery(hash_name, name_hash, key_hash, serial_to_hex(issuing.serial_number), None)
        der = build_response(query, CertificateStatus(ocsp.OCSPCertStatus.GOOD), signer, this_update, next_update)
        responses[PRESIGNED_KEY.format(serial=query.serial_number, hash=hash_name)] = der
    return responses


@dataclass
class OcspResponder:
    """Answers OCSP requests for the issuing CA (and, pre-signed, for the root's one child).

    Args:
        store: the inventory (consistent GetItem per request).
        load_issuing: returns the issuing CA's record and KMS-backed key (cached by the caller).
        load_root_certificate: returns the root CA certificate.
        presigned: the root-signed responses.
        validity: nextUpdate - thisUpdate of every response this function signs.
    """

    store: Certificates
    load_issuing: Callable[[], CaSigner]
    load_root_certificate: Callable[[], x509.Certificate]
    presigned: PresignedSource
    validity: timedelta
    _signer: Signer | None = field(default=None, init=False)
    kms_signatures: int = field(default=0, init=False)

    def signer(self, now: datetime) -> Signer:
        """The delegated responder, renewed (one ``kms:Sign``) when it would not outlast a response."""
        if self._signer is None or self._signer.certificate.not_valid_after_utc - now < max(
            RENEW_BEFORE, self.validity
        ):
            self._signer = issue_responder_certificate(self.load_issuing(), now)
            self.kms_signatures += 1
        return self._signer

    def answer(self, method: str, path_tail: str, body: bytes, now: datetime) -> OcspAnswer:
        """Parse, look up, sign. Error statuses come back as :class:`OcspRefusal`.

        Raises:
            OcspRefusal: ``malformedRequest`` (bad request), ``unauthorized`` (not one of our
                CAs, or a root-issued serial with no pre-signed response).
            Exception: a backend failure (the handler answers ``tryLater``).
        """
        query = request_from_http(method, path_tail, body)
        issuing = self.load_issuing().record.certificate
        if (query.issuer_name_hash, query.issuer_key_hash) == issuer_hashes(issuing, query.hash_name):
            return self._answer_issuing(query, now)
        root = self.load_root_certificate()
        if (query.issuer_name_hash, query.issuer_key_hash) == issuer_hashes(root, query.hash_name):
            return self._answer_presigned(query)
        raise OcspRefusal(ocsp.OCSPResponseStatus.UNAUTHORIZED, "the request names another issuer")

    def _answer_issuing(self, query: CertificateQuery, now: datetime) -> OcspAnswer:
        record = self.store.get_certificate(query.serial_number)
        if record is None or record.ca != ISSUING:
            status = CertificateStatus(ocsp.OCSPCertStatus.UNKNOWN)
        elif record.status == STATUS_REVOKED:
            status = CertificateStatus(ocsp.OCSPCertStatus.REVOKED, record.revoked_at, record.revocation_reason)
        else:
            status = CertificateStatus(ocsp.OCSPCertStatus.GOOD)
        this_update = now.replace(microsecond=0)
        next_update = this_update + self.validity
        der = build_response(query, status, self.signer(now), this_update, next_update)
        return OcspAnswer(der, "successful", this_update, next_update, status.status.name.lower())

    def _answer_presigned(self, query: CertificateQuery) -> OcspAnswer:
        der = self.presigned.get(PRESIGNED_KEY.format(serial=query.serial_number, hash=query.hash_name))
        if der is None:
            raise OcspRefusal(ocsp.OCSPResponseStatus.UNAUTHORIZED, f"no root-signed response for {ROOT}-issued serial")
        single = ocsp.load_der_ocsp_response(der)
        return OcspAnswer(
            der, "successful", single.this_update_utc, single.next_update_utc, single.certificate_status.name.lower()
        )


def responder_certificate_pem(signer: Signer) -> bytes:
    """The responder certificate, PEM (for tests and the demo)."""
    return signer.certificate.public_bytes(serialization.Encoding.PEM)
