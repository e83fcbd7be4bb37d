"""The certificates of a CA by notAfter: what the inventory lists and the expiry job reads.

One read (:meth:`CertificateIndex.certificates_by_expiry`) returns one page of a CA's certificates,
earliest notAfter first, in a notAfter range, from an opaque resume position; the listing's filters
and the expiry rules are the callers' (:mod:`kmsca.inventory`, :mod:`kmsca.expiry`). The entries are
what the index holds of each certificate (:class:`IndexedCertificate`), not whole records. On
DynamoDB (:mod:`kmsca.store.dynamodb.certificate_index`) one read is one Query of the ``ByCaExpiry``
index, which is eventually consistent: a certificate written a second ago may be missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..records import UnreadableRecord


@dataclass(frozen=True)
class IndexPosition:
    """Where a read of the index resumes: just after the certificate ``serial_number`` of CA ``ca``,
    whose notAfter is ``not_after`` as stored (ISO 8601 UTC text, :func:`kmsca.records.iso`).

    Kept as stored (not parsed) so that a position given back, e.g. in the inventory's
    ``next_token``, resumes exactly where the read stopped.
    """

    ca: str
    not_after: str
    serial_number: str


@dataclass(frozen=True)
class IndexedCertificate:
    """One certificate as the index holds it (the attributes ``ByCaExpiry`` projects, template.yaml).

    Attributes:
        serial_number: canonical lowercase hex.
        not_after: notAfter, UTC (whole seconds).
        status: ``issued`` or ``revoked``.
        subject: RFC 4514 subject; profile: profile name; issued_at: UTC.
        sans: subject alternative names (``dns:api.example.com``), () for none.
        requested_by, acm_certificate_arn, revocation_reason, predecessor: when set, else None.
        position: this entry's place in the index (a read resumed from it starts after it).
    """

    serial_number: str
    not_after: datetime
    status: str
    subject: str
    profile: str
    issued_at: datetime
    position: IndexPosition
    sans: tuple[str, ...] = ()
    requested_by: str | None = None
    acm_certificate_arn: str | None = None
    revocation_reason: str | None = None
    predecessor: str | None = None


@dataclass(frozen=True)
class IndexPage:
    """One read of the index.

    Attributes:
        certificates: the entries read, earliest notAfter first.
        resume: where the next read starts, or None when the range is exhausted (a non-None
            ``resume`` may still lead to an empty page).
        unreadable: entries read that could not be decoded (a bad time or key): left out of
            ``certificates`` and reported, never stopping the read of the others.
    """

    certificates: list[IndexedCertificate]
    resume: IndexPosition | None
    unreadable: list[UnreadableRecord] = field(default_factory=list)


class CertificateIndex(Protocol):
    """A CA's certificates ordered by notAfter."""

    def certificates_by_expiry(
        self,
        ca: str,
        not_after_from: datetime | None = None,
        not_after_to: datetime | None = None,
        limit: int | None = None,
        start: IndexPosition | None = None,
    ) -> IndexPage:
        """One page of the certificates of ``ca`` whose notAfter is in the range, earliest first.

        The range (times compared to the whole second, as stored): both bounds given,
        ``not_after_from <= notAfter <= not_after_to`` (both ends inclusive, DynamoDB ``BETWEEN``);
        only ``not_after_from``: ``notAfter >= not_after_from``; only ``not_after_to``:
        ``notAfter < not_after_to`` (exclusive); neither: every certificate of ``ca``.

        Args:
            ca: the issuing CA's name (``issuing``).
            limit: at most this many entries read (None: as many as one read returns; on DynamoDB
                1 MB).
            start: resume after this position (a previous page's ``resume`` or an entry's
                ``position``), or None for the start of the range.

        Raises:
            kmsca.errors.AwsCallFailed: the storage failed (e.g. a position it refuses).
        """
        ...
