"""Storage for the rotation of ACM certificates: which ARNs are due, the lease that keeps two runs
from rotating one ARN, and the transaction that puts the new certificate behind the ARN."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from ..records import CertificateRecord


class AcmRotations(Protocol):
    """The ACM ARNs the CA manages and their rotation."""

    def list_acm_due(self, not_after_before: datetime) -> list[tuple[str, str]]:
        """(serial number, ACM ARN) of every managed ARN whose current certificate expires before
        ``not_after_before`` or is revoked; earliest expiry first."""
        ...

    def claim_rotation(self, serial_number: str, now: datetime, lease: timedelta) -> bool:
        """Take the rotation lease of a managed certificate until ``now + lease``. False when another
        run holds an unexpired lease."""
        ...

    def release_rotation(self, serial_number: str) -> None:
        """Give the rotation lease back (after a failed rotation, so the next run retries)."""
        ...

    def record_rotation(
        self, new: CertificateRecord, old_serial_number: str, now: datetime, old_revoked: bool = False
    ) -> None:
        """Atomically make ``new`` (recorded pending) the active certificate behind its ARN and revoke
        the old one as ``superseded`` at ``now``; an old certificate that was revoked already
        (``old_revoked``) keeps its revocation."""
        ...

    def mark_acm_missing(self, serial_number: str, now: datetime) -> None:
        """ACM says the ARN no longer exists: stop managing it."""
        ...
