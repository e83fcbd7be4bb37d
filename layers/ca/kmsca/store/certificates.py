"""Storage of issued certificates (``CERT#<serial>``): the write that records one (with its
idempotency record and renewal link, atomically) and the read by serial number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..records import CertificateRecord, IdempotencyRecord


@dataclass(frozen=True)
class Renewal:
    """A certificate that renews another.

    Attributes:
        predecessor: canonical serial number of the certificate renewed; it must be ``issued``
            and not renewed before.
        revoke_at: when the predecessor is to be revoked as ``superseded``, UTC; None: never.
    """

    predecessor: str
    revoke_at: datetime | None = None


class Certificates(Protocol):
    """Issued certificates, one record per serial number."""

    def put_certificate(
        self,
        record: CertificateRecord,
        idempotency: IdempotencyRecord | None = None,
        now: datetime | None = None,
        renewal: Renewal | None = None,
    ) -> None:
        """Record a new certificate and, atomically with it, its idempotency record (``now`` decides
        whether an earlier record of the key has expired) and its renewal link.

        Raises:
            SerialNumberCollision: another certificate has this serial number.
            IdempotencyKeyInUse: another request recorded a result for the key within its window.
            WriteConflict: a concurrent write of the same idempotency record; nothing written, retry.
            RenewalRefused: the predecessor is not ``issued`` or was renewed already.
        """
        ...

    def get_certificate(self, serial_number: str) -> CertificateRecord | None:
        """The record of a canonical serial number (consistent read); None when unknown."""
        ...
