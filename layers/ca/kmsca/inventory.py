"""The inventory's read side: list certificates with filters and pagination, show one.

Listing reads the certificates of a CA by notAfter (:class:`~kmsca.store.CertificateIndex`; on
DynamoDB a Query of the ``ByCaExpiry`` index, partition ``ca``, sort ``not_after``, never a
Scan), earliest expiry first; the other filters (status, profile, name or SAN substring, requested
by, ACM ARN) are applied to the projected attributes of the items the Query reads (DynamoDB's
FilterExpression would read, and bill, the same items). A page stops at ``page_size`` matches or
after :data:`MAX_QUERIES` Query calls, so a selective filter may give a short page with a
``next_token``: continue until ``next_token`` is absent.

The index is eventually consistent: a certificate issued a second ago may not be listed yet;
``show`` reads the table itself (consistent).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import CertificateNotFound, InvalidRequest
from .records import UnreadableRecord, iso
from .serial import canonical_serial
from .store import CertificateStore, IndexedCertificate, IndexPosition
from .table_keys import certificate_key, is_certificate_key, serial_of

#: Query calls one list page may make (each reads at most ``page_size`` index items).
MAX_QUERIES = 10
#: Attributes a list entry shows (all projected into ``ByCaExpiry``; template.yaml).
LIST_FIELDS = (
    "serial_number",
    "subject",
    "sans",
    "profile",
    "status",
    "not_after",
    "issued_at",
    "requested_by",
    "acm_certificate_arn",
    "revocation_reason",
    "predecessor",
)


@dataclass(frozen=True)
class ListQuery:
    """What to list.

    Attributes:
        ca: issuing CA name (``issuing``).
        status: ``issued`` or ``revoked``, or None for both.
        profile: profile name, or None.
        name_contains: case-insensitive substring of the subject (RFC 4514) or of a SAN
            (``dns:api.example.com``), or None.
        requested_by: exact ``requested_by`` label, or None.
        expiring_before, expiring_after: bounds on notAfter (UTC; before is exclusive).
        acm_certificate_arn: exact ACM ARN, or None.
        page_size: 1-100 entries.
        next_token: from the previous page, or None.
    """

    ca: str = "issuing"
    status: str | None = None
    profile: str | None = None
    name_contains: str | None = None
    requested_by: str | None = None
    expiring_before: datetime | None = None
    expiring_after: datetime | None = None
    acm_certificate_arn: str | None = None
    page_size: int = 50
    next_token: str | None = None

    def matches(self, entry: dict[str, Any]) -> bool:
        """Whether one index entry (plain values) passes every filter but the key range."""
        exact = {
            "status": self.status,
            "profile": self.profile,
            "requested_by": self.requested_by,
            "acm_certificate_arn": self.acm_certificate_arn,
        }
        if any(wanted is not None and entry.get(name) != wanted for name, wanted in exact.items()):
            return False
        if self.name_contains is None:
            return True
        needle = self.name_contains.casefold()
        haystack = [str(entry.get("subject", "")), *(str(s) for s in entry.get("sans", []))]
        return any(needle in text.casefold() for text in haystack)


def _encode_token(position: IndexPosition) -> str:
    """The ``next_token`` of a position: URL-safe base64 of the JSON ``{"pk", "ca", "not_after"}``
    (the index key DynamoDB resumes from; the format of every token issued so far)."""
    plain = {"pk": certificate_key(position.serial_number), "ca": position.ca, "not_after": position.not_after}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode("ascii")


def _decode_token(token: str, ca: str) -> IndexPosition:
    """The position of a ``next_token`` (:func:`_encode_token`) of a listing of ``ca``.

    Raises:
        InvalidRequest: not such a token, or one of another CA's listing.
    """
    try:
        plain = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if set(plain) != {"pk", "ca", "not_after"} or not all(isinstance(v, str) for v in plain.values()):
            raise ValueError("unexpected fields")
    except (ValueError, UnicodeEncodeError, binascii.Error):
        raise InvalidRequest("next_token is not a token from a previous page of this listing") from None
    if plain["ca"] != ca or not is_certificate_key(plain["pk"]):
        raise InvalidRequest("next_token belongs to another listing (another ca)")
    return IndexPosition(plain["ca"], plain["not_after"], serial_of(plain["pk"]))


def list_entry(certificate: IndexedCertificate) -> dict[str, Any]:
    """A list entry: the :data:`LIST_FIELDS` the certificate has (times ISO 8601 UTC, ``sans``
    only when there are some, optional fields only when set)."""
    values: dict[str, Any] = {
        "serial_number": certificate.serial_number,
        "subject": certificate.subject,
        "sans": list(certificate.sans) or None,
        "profile": certificate.profile,
        "status": certificate.status,
        "not_after": iso(certificate.not_after),
        "issued_at": iso(certificate.issued_at),
        "requested_by": certificate.requested_by,
        "acm_certificate_arn": certificate.acm_certificate_arn,
        "revocation_reason": certificate.revocation_reason,
        "predecessor": certificate.predecessor,
    }
    return {name: values[name] for name in LIST_FIELDS if values[name] is not None}


def _page(
    found: list[dict[str, Any]], calls: int, resume: IndexPosition | None, unreadable: list[UnreadableRecord]
) -> dict[str, Any]:
    page: dict[str, Any] = {"certificates": found, "queries": calls}
    if resume is not None:
        page["next_token"] = _encode_token(resume)
    if unreadable:
        page["unreadable"] = unreadable
    return page


class Inventory:
    """List and show certificates.

    Args:
        store: the certificates (:meth:`get_certificate`), their renewal links (:meth:`get_renewal`)
            and the index by notAfter (:class:`~kmsca.store.certificate_index.CertificateIndex`);
            on DynamoDB :class:`~kmsca.store.DynamoDbCertificateStore`.
    """

    def __init__(self, store: CertificateStore) -> None:
        self._store = store

    def list_page(self, query: ListQuery) -> dict[str, Any]:
        """One page: ``{"certificates": [entry, ...], "next_token": str (absent on the last page),
        "queries": number of index reads (Query calls) made}``; entries hold :data:`LIST_FIELDS`
        (times ISO 8601 UTC). Entries of the index that cannot be read are left out and, when there
        are any, listed under ``"unreadable"`` (:class:`~kmsca.records.UnreadableRecord`: for the
        handler to report, not for the caller).

        Raises:
            InvalidRequest: a bad ``next_token``.
            AwsCallFailed: the index could not be read.
        """
        start = _decode_token(query.next_token, query.ca) if query.next_token else None
        found: list[dict[str, Any]] = []
        unreadable: list[UnreadableRecord] = []
        calls = 0
        while True:
            page = self._store.certificates_by_expiry(
                query.ca, query.expiring_after, query.expiring_before, query.page_size, start
            )
            calls += 1
            unreadable += page.unreadable
            for index, certificate in enumerate(page.certificates):
                entry = list_entry(certificate)
                if query.matches(entry):
                    found.append(entry)
                if len(found) == query.page_size:
                    rest = index < len(page.certificates) - 1 or page.resume is not None
                    return _page(found, calls, certificate.position if rest else None, unreadable)
            if page.resume is None or calls >= MAX_QUERIES:
                return _page(found, calls, page.resume, unreadable)
            start = page.resume

    def show(self, serial_number: str, now: datetime) -> dict[str, Any]:
        """Everything the inventory knows of one certificate (two GetItems: the certificate and
        its renewal link). ``serial_number`` in any form (hex, any case, colons).

        Returns:
            serial_number, subject, issuer, sans, profile, status, not_before, not_after, expired,
            issued_at, fingerprint_sha256, spki_sha256, certificate (PEM), and when set:
            revoked_at, revocation_reason, invalidity_date, key_type, acm_certificate_arn, acm_target,
            acm_account_id, requested_by, predecessor, successor, renewed_at, revoke_at, superseded_at.

        Raises:
            InvalidRequest: a malformed serial number.
            CertificateNotFound: no such certificate.
        """
        try:
            canonical = canonical_serial(serial_number)
        except Exception as exc:
            raise InvalidRequest(f"serial_number: {getattr(exc, 'message', exc)}") from None
        record = self._store.get_certificate(canonical)
        if record is None:
            raise CertificateNotFound(f"no certificate with serial number {canonical} was issued by this CA")
        shown: dict[str, Any] = {
            "serial_number": record.serial_number,
            "subject": record.subject,
            "issuer": record.issuer,
            "sans": list(record.sans),
            "profile": record.profile,
            "status": record.status,
            "not_before": iso(record.not_before),
            "not_after": iso(record.not_after),
            "expired": record.not_after <= now,
            "issued_at": iso(record.issued_at),
            "fingerprint_sha256": record.fingerprint_sha256,
            "spki_sha256": record.spki_sha256,
            "certificate": record.certificate_pem,
        }
        optional = {
            "revoked_at": iso(record.revoked_at) if record.revoked_at else None,
            "revocation_reason": record.revocation_reason,
            "invalidity_date": iso(record.invalidity_date) if record.invalidity_date else None,
            "key_type": record.key_type,
            "acm_certificate_arn": record.acm_certificate_arn,
            "acm_target": record.acm_target,
            "acm_account_id": record.acm_account_id,
            "requested_by": record.requested_by,
            "predecessor": record.predecessor,
        }
        shown.update({k: v for k, v in optional.items() if v is not None})
        shown.update(self._store.get_renewal(canonical) or {})
        return shown
