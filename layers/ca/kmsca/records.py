"""Value objects the store keeps: certificates, CA records, idempotency records.

They are immutable and speak RFC 5280 (serial_number, subject, issuer, not_before, not_after).
Times are timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from .errors import CaError
from .names import san_strings
from .reasons import REVOCATION_REASONS
from .serial import canonical_serial, serial_to_hex
from .table_keys import serial_of

STATUS_ISSUED = "issued"
STATUS_REVOKED = "revoked"

# RFC 5280 CRLReason names the CA stores for end entities (kmsca.reasons), and their cryptography flags.
REASONS: dict[str, x509.ReasonFlags] = {name: x509.ReasonFlags(name) for name in REVOCATION_REASONS}


# Every time the CA stores or signs lies in this range. 1950 is where X.509 time starts (UTCTime,
# RFC 5280 4.1.2.5.1; cryptography refuses CRL revocation dates before it); 9999 is the last year
# a four-digit GeneralizedTime holds. Anything outside is refused at the boundary, never stored.
EARLIEST_TIME = datetime(1950, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def check_time_range(moment: datetime) -> datetime:
    """``moment`` if it lies in [:data:`EARLIEST_TIME`, :data:`LATEST_TIME`].

    Raises:
        ValueError: outside the range (a message naming both bounds).
    """
    if not EARLIEST_TIME <= moment <= LATEST_TIME:
        raise ValueError("times must lie between 1950-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
    return moment


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z``, whole seconds and a four-digit year (``2026-11-21T08:00:00Z``).

    The one stored form of a time: fixed width, so it sorts as text and :func:`parse_iso` reads it
    back. (``strftime("%Y")`` does not pad years below 1000 on glibc, which is how ``0026`` once
    became an unreadable ``26-...``.)

    Raises:
        ValueError: a naive time, or one outside :func:`check_time_range`.
    """
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("times must lie between 1950-01-01T00:00:00Z and 9999-12-31T23:59:59Z") from None
    check_time_range(utc)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso` (any ISO 8601 with an offset is accepted), in UTC.

    Raises:
        ValueError: not ISO 8601, no UTC offset, or outside :func:`check_time_range` (including a
            time whose conversion to UTC leaves the calendar, such as ``0001-01-01T00:00:00+01:00``).
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text[:64]!r} has no UTC offset")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("times must lie between 1950-01-01T00:00:00Z and 9999-12-31T23:59:59Z") from None
    return check_time_range(utc)


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def spki_sha256(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex (the key's pin)."""
    return _spki_sha256(certificate.public_key())


def _spki_sha256(public_key: CertificatePublicKeyTypes) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class CertificateParts:
    """What a certificate was built from (RFC 5280 4.1 fields), so that its inventory record needs
    no parsing of the signed certificate: the issue path keeps what it gave the builder.

    Attributes:
        serial_number: the serial number (int). subject, issuer: the names. sans: the
        subjectAltName entries (empty: no extension). not_before, not_after: the validity, UTC,
        whole seconds (what the DER encodes). public_key: the subject public key.
    """

    serial_number: int
    subject: x509.Name
    issuer: x509.Name
    sans: tuple[x509.GeneralName, ...]
    not_before: datetime
    not_after: datetime
    public_key: CertificatePublicKeyTypes

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateParts:
        """The parts read back from a signed certificate (for certificates built elsewhere)."""
        try:
            sans = tuple(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            sans = ()
        return cls(
            serial_number=certificate.serial_number,
            subject=certificate.subject,
            issuer=certificate.issuer,
            sans=sans,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            public_key=certificate.public_key(),
        )


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
        requested_by: for a function-URL request (AWS_IAM), the verified caller's ARN (IAM user,
            or ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``); for a direct Invoke
            (administrators), the label the request sent, not a verified identity.
        predecessor: serial number of the certificate this one renews, or None.
        acm_target: the edge target whose ACM holds ``acm_certificate_arn`` (``local``, ...), or None
            (certificates imported before edge targets: the CA account's own ACM).
        acm_account_id: that target's account id, or None.
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
    requested_by: str | None = None
    predecessor: str | None = None
    acm_target: str | None = None
    acm_account_id: str | None = None

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
        requested_by: str | None = None,
        predecessor: str | None = None,
        acm_target: str | None = None,
        acm_account_id: str | None = None,
        parts: CertificateParts | None = None,
    ) -> CertificateRecord:
        """The record of a newly signed ``certificate`` (status ``issued``).

        Args:
            parts: what the certificate was built from (:class:`CertificateParts`); None to read
                them back from the certificate. The record is the same either way (tests compare
                them); passing them spares parsing the names, extensions and key again.
        """
        parts = parts or CertificateParts.of(certificate)
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(
            serial_number=serial_to_hex(parts.serial_number),
            ca=ca,
            subject=parts.subject.rfc4514_string(),
            issuer=parts.issuer.rfc4514_string(),
            sans=tuple(san_strings(parts.sans)),
            profile=profile,
            not_before=parts.not_before,
            not_after=parts.not_after,
            fingerprint_sha256=hashlib.sha256(der).hexdigest(),
            spki_sha256=_spki_sha256(parts.public_key),
            status=STATUS_ISSUED,
            certificate_pem=pem(certificate),
            issued_at=issued_at,
            key_type=key_type,
            acm_certificate_arn=acm_certificate_arn,
            requested_by=requested_by,
            predecessor=predecessor,
            acm_target=acm_target,
            acm_account_id=acm_account_id,
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
    keeps CRL publication at about 4,400 revoked certificates per 1 MB Query page.

    Raises:
        ValueError: a time outside :func:`check_time_range` or an unknown reason (nothing is stored).
    """
    if reason not in REASONS:
        raise ValueError(f"reason {reason[:64]!r} is not one of {', '.join(REASONS)}")
    text = f"{iso(revoked_at)} {reason}"
    return f"{text} {iso(invalidity_date)}" if invalidity_date else text


@dataclass(frozen=True)
class UnreadableRecord:
    """A stored record (or part of one) that cannot be read back.

    It is skipped (or, for an unreadable invalidityDate only, listed without it) and counted in
    the ``UnreadableRecords`` metric; it never stops the processing of the other records.

    Attributes:
        key: the item's table key (``CERT#<serial>``); never a secret.
        problem: what is wrong, one sentence.
        serial_number: canonical serial number, when the key holds one (so that nothing keyed by it,
            such as a KeyValueStore entry, is removed because its record cannot be read).
        skipped: True when the record was left out; False when it was used without the bad field.
    """

    key: str
    problem: str
    serial_number: str | None = None
    skipped: bool = True


def serial_of_key(key: str) -> str | None:
    """The canonical serial number in a ``CERT#<serial>`` table key; None when the key is not a
    certificate's or its serial number is not in canonical form (an unreadable record's key)."""
    try:
        stored = serial_of(key)
        serial_number = canonical_serial(stored)
    except (ValueError, CaError):
        return None
    return serial_number if serial_number == stored else None


def parse_crl_entry(
    key: str, text: object, not_after: object, problems: list[UnreadableRecord] | None = None
) -> RevokedEntry | None:
    """Inverse of :func:`crl_entry_text`, tolerant of corrupted items.

    Args:
        key: the item's table key, ``CERT#<canonical serial>``.
        text: the ``crl_entry`` attribute; ``not_after``: the ``not_after`` attribute (any type,
            as read: a corrupted item may hold anything).
        problems: receives an :class:`UnreadableRecord` for each record that cannot be read whole.

    Returns:
        The entry; None when the serial number, revocation date, reason or notAfter cannot be read
        (then the record is reported as skipped). An unreadable invalidityDate alone (an optional,
        non-critical CRL entry extension) is dropped and reported, so the revocation stays listed.
    """
    sink = problems if problems is not None else []
    serial_number = serial_of_key(key)
    parts = text.split(" ") if isinstance(text, str) else []
    try:
        if serial_number is None:
            raise ValueError("the key is not CERT#<canonical serial number>")
        if len(parts) not in (2, 3):
            raise ValueError("crl_entry is not '<revoked_at> <reason>[ <invalidity_date>]'")
        revoked_at = parse_iso(parts[0])
        if parts[1] not in REASONS:
            raise ValueError(f"reason {parts[1][:64]!r} is not one of {', '.join(REASONS)}")
        if not isinstance(not_after, str):
            raise ValueError("not_after is missing or not a string")
        expiry = parse_iso(not_after)
    except ValueError as exc:
        sink.append(UnreadableRecord(key[:80], f"skipped: {exc}", serial_number))
        return None
    invalidity_date = None
    if len(parts) == 3:
        try:
            invalidity_date = parse_iso(parts[2])
        except ValueError as exc:
            sink.append(UnreadableRecord(key[:80], f"listed without its invalidity date: {exc}", serial_number, False))
    return RevokedEntry(serial_number, revoked_at, parts[1], invalidity_date, expiry)


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
