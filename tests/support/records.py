"""Inventory records for store tests: a certificate record with only the fields a test cares about."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from kmsca.records import STATUS_ISSUED, CertificateRecord

#: The fixed time of the pure tests (whole seconds, UTC: what the table stores).
NOW = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)


def certificate_record(
    serial_number: str,
    *,
    ca: str = "issuing",
    not_after: datetime = NOW + timedelta(days=30),
    acm_certificate_arn: str | None = None,
    fingerprint: str | None = None,
    predecessor: str | None = None,
) -> CertificateRecord:
    """An ``issued`` record of a certificate valid from ``NOW`` (the PEM is a placeholder)."""
    return CertificateRecord(
        serial_number=serial_number,
        ca=ca,
        subject=f"CN=device-{serial_number}",
        issuer="CN=Test Issuing CA",
        sans=(),
        profile="client",
        not_before=NOW,
        not_after=not_after,
        fingerprint_sha256=fingerprint or hashlib.sha256(serial_number.encode()).hexdigest(),
        spki_sha256=hashlib.sha256(b"spki" + serial_number.encode()).hexdigest(),
        status=STATUS_ISSUED,
        certificate_pem="-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        issued_at=NOW,
        acm_certificate_arn=acm_certificate_arn,
        predecessor=predecessor,
    )
