"""Storage of revocations: revoking a certificate, and the revoked certificates of a CA (for CRLs
and the KeyValueStore)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from ..records import CertificateRecord, RevokedEntry, UnreadableRecord


class Revocations(Protocol):
    """Revoked certificates (RFC 5280 section 5.3.1 reasons)."""

    def revoke(
        self, serial_number: str, reason: str, revoked_at: datetime, invalidity_date: datetime | None
    ) -> tuple[CertificateRecord, bool]:
        """Mark an issued certificate revoked (``reason`` is an RFC 5280 reason name).

        Returns:
            (the record after the call, True when it was revoked already: then nothing changed and
            the first revocation is returned).

        Raises:
            CertificateNotFound: no certificate with that serial number.
        """
        ...

    def list_revoked(
        self, ca: str, not_after_from: datetime, problems: list[UnreadableRecord] | None = None
    ) -> Iterator[RevokedEntry]:
        """Revoked certificates of CA ``ca`` whose notAfter is at or after ``not_after_from``. A record
        that cannot be read is appended to ``problems`` and skipped; it never stops the others."""
        ...

    def still_revoked(self, serial_numbers: list[str], now: datetime) -> set[str]:
        """Those of ``serial_numbers`` revoked and unexpired at ``now`` (or revoked with an unreadable
        notAfter), read consistently: what may not leave a list of revoked serials."""
        ...
