"""Value objects the store keeps: certificates, CA records, idempotency records.

They are immutable and speak RFC 5280 (serial_number, subject, issuer, not_before, not_after).
Times are timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .names import san_strings
from .serial import serial_to_hex

STATUS_ISSUED = "issued"
STATUS_REVOKED = "revoked"


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` and whole seconds (``2026-11-21T08:00:00Z``). Sorts as text."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso` (any ISO 8601 with an offset is accepted)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return moment.astimezone(UTC)


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def spki_sha256(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex (the key's pin)."""
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class CertificateRecord:
    """One issued end-entity certificate, as the inventory keeps it.

    Attributes:
        serial_number: canonical hex.
        ca: name of the issuing CA record (``issuing``).
        subject, issuer: RFC 4514 strings.
        sans: ``type:value`` strings.
        profile: profile name.
        not_before, not_after: validity, UTC.
        fingerprint_sha256: SHA-256 of the DER certificate, hex.
        spki_sha256: SHA-256 of the DER SubjectPublicKeyInfo, hex.
        status: ``issued`` or ``revoked``.
        certificate_pem: the certificate.
        issued_at: when it was signed, UTC.
        revoked_at: when it was revoked (the CRL entry's revocationDate), UTC, or None.
        revocation_reason: RFC 5280 CRLReason name (``keyCompromise``), or None.
        invalidity_date: when the key is known or suspected to have been compromised, or None.
        key_type: for certificates whose key the CA generated (``ec-p256``, ``rsa-2048``), else None.
        acm_certificate_arn: ACM (us-east-1) ARN the certificate was imported into, or None.
    """

    serial_number: str
    ca: str
    subject: str
    issuer: str
    sans: tuple[str, ...]
    profile: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    spki_sha256: str
    status: str
    certificate_pem: str
    issued_at: datetime
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    invalidity_date: datetime | None = None
    key_type: str | None = None
    acm_certificate_arn: str | None = None

    @classmethod
    def from_certificate(
        cls,
        certificate: x509.Certificate,
        *,
        ca: str,
        profile: str,
        issued_at: datetime,
        key_type: str | None = None,
        acm_certificate_arn: str | None = None,
    ) -> CertificateRecord:
        try:
            sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            san_list = tuple(san_strings(sans))
        except x509.ExtensionNotFound:
            san_list = ()
        return cls(
            serial_number=serial_to_hex(certificate.serial_number),
            ca=ca,
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            sans=san_list,
            profile=profile,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
            spki_sha256=spki_sha256(certificate),
            status=STATUS_ISSUED,
            certificate_pem=pem(certificate),
            issued_at=issued_at,
            key_type=key_type,
            acm_certificate_arn=acm_certificate_arn,
        )

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode("ascii"))


@dataclass(frozen=True)
class RevokedEntry:
    """One entry of a CRL, as the sparse ``RevokedByCa`` index returns it (RFC 5280 5.1.2.6).

    Attributes:
        serial_number: canonical hex.
        revoked_at: revocationDate, UTC.
        reason: CRLReason name.
        invalidity_date: invalidityDate (RFC 5280 5.3.2), or None.
        not_after: the certificate's notAfter (entries are kept until then).
    """

    serial_number: str
    revoked_at: datetime
    reason: str
    invalidity_date: datetime | None
    not_after: datetime


def crl_entry_text(revoked_at: datetime, reason: str, invalidity_date: datetime | None) -> str:
    """The compact ``crl_entry`` attribute projected into the ``RevokedByCa`` index:
    ``"<revoked_at> <reason>[ <invalidity_date>]"`` (about 35-56 bytes). Keeping index entries small
    keeps CRL publication at about 4,400 revoked certificates per 1 MB Query page."""
    text = f"{iso(revoked_at)} {reason}"
    return f"{text} {iso(invalidity_date)}" if invalidity_date else text


def parse_crl_entry(serial_number: str, text: str, not_after: datetime) -> RevokedEntry:
    """Inverse of :func:`crl_entry_text`."""
    parts = text.split(" ")
    return RevokedEntry(
        serial_number=serial_number,
        revoked_at=parse_iso(parts[0]),
        reason=parts[1],
        invalidity_date=parse_iso(parts[2]) if len(parts) > 2 else None,
        not_after=not_after,
    )


@dataclass(frozen=True)
class CaRecord:
    """A CA certificate and the KMS key that signs for it.

    Attributes:
        name: ``root`` or ``issuing``.
        certificate: the CA certificate.
        key_id: ARN of the KMS key.
        created_at: when the record was written, UTC.
    """

    name: str
    certificate: x509.Certificate
    key_id: str
    created_at: datetime

    @property
    def serial_number(self) -> str:
        return serial_to_hex(self.certificate.serial_number)


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an idempotency key was used for.

    Attributes:
        key_hash: SHA-256 of the client's idempotency key, hex (the key itself is not stored).
        request_hash: SHA-256 of the canonical request without the key, hex.
        response: the response returned the first time.
        expires_at: after this the key may be used again (DynamoDB TTL deletes the record).
    """

    key_hash: str
    request_hash: str
    response: dict[str, str] = field(hash=False)
    expires_at: datetime
