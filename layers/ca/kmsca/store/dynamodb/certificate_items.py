"""Certificate items (``CERT#<serial>``) to and from :class:`~kmsca.records.CertificateRecord`."""

from __future__ import annotations

from typing import Any

from ...records import CertificateRecord, iso, parse_iso
from ...table_keys import certificate_key
from .table import ACM_ACTIVE, _item, _plain


def certificate_item(record: CertificateRecord) -> dict[str, Any]:
    """The item of ``record``; the current certificate behind an ACM ARN is in ``AcmByExpiry``."""
    return _item(
        {
            "pk": certificate_key(record.serial_number),
            "record_type": "certificate",
            "serial_number": record.serial_number,
            "ca": record.ca,
            "subject": record.subject,
            "issuer": record.issuer,
            "sans": list(record.sans) or None,
            "profile": record.profile,
            "not_before": iso(record.not_before),
            "not_after": iso(record.not_after),
            "fingerprint_sha256": record.fingerprint_sha256,
            "spki_sha256": record.spki_sha256,
            "status": record.status,
            "certificate": record.certificate_pem,
            "issued_at": iso(record.issued_at),
            "key_type": record.key_type,
            "acm_certificate_arn": record.acm_certificate_arn,
            # the current certificate behind an ACM ARN: in the sparse AcmByExpiry index
            "acm_managed": ACM_ACTIVE if record.acm_certificate_arn else None,
            "requested_by": record.requested_by,
            "predecessor": record.predecessor,
        }
    )


def certificate_record(item: dict[str, Any]) -> CertificateRecord:
    """The record of a raw certificate item (times parsed; ValueError on an unreadable one)."""
    v = _plain(item)
    return CertificateRecord(
        serial_number=v["serial_number"],
        ca=v["ca"],
        subject=v["subject"],
        issuer=v["issuer"],
        sans=tuple(v.get("sans", [])),
        profile=v["profile"],
        not_before=parse_iso(v["not_before"]),
        not_after=parse_iso(v["not_after"]),
        fingerprint_sha256=v["fingerprint_sha256"],
        spki_sha256=v["spki_sha256"],
        status=v["status"],
        certificate_pem=v["certificate"],
        issued_at=parse_iso(v["issued_at"]),
        revoked_at=parse_iso(v["revoked_at"]) if "revoked_at" in v else None,
        revocation_reason=v.get("revocation_reason"),
        invalidity_date=parse_iso(v["invalidity_date"]) if "invalidity_date" in v else None,
        key_type=v.get("key_type"),
        acm_certificate_arn=v.get("acm_certificate_arn"),
        requested_by=v.get("requested_by"),
        predecessor=v.get("predecessor"),
    )
