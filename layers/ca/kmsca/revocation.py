"""Revocation of end-entity certificates (RFC 5280 section 5.3.1 reason codes).

A revocation is one conditional UpdateItem; the table stream then triggers CRL publication
and the KeyValueStore sync. Revoking a revoked certificate again changes nothing and returns the
first revocation (``already_revoked``: true).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import Field, StrictStr

from .caller_policy import UNRESTRICTED, Caller, Grant
from .errors import CertificateNotFound, InvalidRequest, InvalidRevocationReason
from .models import _Strict
from .reasons import CA_ONLY_REASONS
from .records import EARLIEST_TIME, REASONS, CertificateRecord, iso, parse_iso
from .serial import canonical_serial
from .store import Revocations


class RevokeRequest(_Strict):
    """The revoke function's request.

    Attributes:
        serial_number: hex, any case, colons allowed (``4A:3F:...``); at most 20 octets.
        reason: an RFC 5280 CRLReason name, default ``unspecified``.
        invalidity_date: ISO 8601 with a UTC offset, not in the future (RFC 5280 5.3.2).
    """

    serial_number: StrictStr = Field(max_length=128)
    reason: StrictStr = Field(default="unspecified", max_length=64)
    invalidity_date: StrictStr | None = Field(default=None, max_length=64)


def check_reason(reason: str) -> str:
    """Accept one of :data:`REASONS`.

    Raises:
        InvalidRevocationReason: a CA-only reason, ``removeFromCRL``, or an unknown name.
    """
    if reason in REASONS:
        return reason
    if reason in CA_ONLY_REASONS:
        raise InvalidRevocationReason(
            f"{reason} applies to CA certificates, not to end-entity certificates", reason=reason
        )
    raise InvalidRevocationReason(
        f"reason {reason[:64]!r} is not one of {', '.join(REASONS)}", reason=reason[:64], allowed=list(REASONS)
    )


def check_invalidity_date(text: str | None, now: datetime) -> datetime | None:
    """Parse ``invalidity_date``: ISO 8601 with a UTC offset, from 1950-01-01T00:00:00Z to ``now``.

    Raises:
        InvalidRequest: not ISO 8601 with a UTC offset, before 1950 (a typo such as ``0026``, or a
            time that cannot be represented), or in the future.
    """
    if text is None:
        return None
    try:
        moment = parse_iso(text)
    except ValueError:
        raise InvalidRequest(
            f"invalidity_date {text[:64]!r} is not an ISO 8601 time with a UTC offset between "
            f"{iso(EARLIEST_TIME)} and now, e.g. 2026-11-20T10:00:00Z",
            invalidity_date=text[:64],
        ) from None
    if moment > now:
        raise InvalidRequest(
            f"invalidity_date {iso(moment)} is in the future", invalidity_date=iso(moment), now=iso(now)
        )
    return moment


class RevocationStore(Revocations, Protocol):
    """What :func:`revoke` needs: revocation, and the record a ``may_revoke`` rule checks."""

    def get_certificate(self, serial_number: str) -> CertificateRecord | None:
        """One certificate by canonical serial number; None when unknown."""


def revoke(
    store: RevocationStore,
    request: RevokeRequest,
    now: datetime,
    caller: Caller | None = None,
    grant: Grant = UNRESTRICTED,
) -> dict[str, object]:
    """Revoke one certificate, if ``grant`` lets ``caller`` revoke it (``may_revoke``: ``own`` and
    ``matching`` read the certificate's record first: one more GetItem).

    Returns:
        ``{"serial_number", "revoked_at", "reason", "already_revoked"}`` (and ``invalidity_date``
        when recorded, ``acm_certificate_arn`` for a certificate imported into ACM); for an earlier
        revocation, its values, unchanged.

    Raises:
        InvalidRequest: bad serial number or invalidity date.
        InvalidRevocationReason: see :func:`check_reason`.
        CertificateNotFound: no such certificate.
        NotAuthorized: the caller's rule does not let it revoke this certificate (nothing written).
    """
    serial_number = canonical_serial(request.serial_number)
    reason = check_reason(request.reason)
    invalidity_date = check_invalidity_date(request.invalidity_date, now)
    existing = store.get_certificate(serial_number) if grant.revoke_needs_record else None
    if grant.revoke_needs_record and existing is None:
        raise CertificateNotFound(f"no certificate with serial number {serial_number} was issued by this CA")
    grant.check_revoke(caller, existing)
    record, already_revoked = store.revoke(serial_number, reason, now, invalidity_date)
    response: dict[str, object] = {
        "serial_number": record.serial_number,
        "revoked_at": iso(record.revoked_at) if record.revoked_at else None,
        "reason": record.revocation_reason,
        "already_revoked": already_revoked,
    }
    if record.invalidity_date is not None:
        response["invalidity_date"] = iso(record.invalidity_date)
    if record.acm_certificate_arn:  # a CloudFront origin certificate: ACM serves it until rotated
        response["acm_certificate_arn"] = record.acm_certificate_arn
    return response
