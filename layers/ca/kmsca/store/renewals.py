"""Storage of renewal links (``RENEWAL#<predecessor>``): which certificate renewed which, and the
predecessors due for revocation as ``superseded``."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class RenewalLinks(Protocol):
    """Renewal links, written with the successor (:meth:`Certificates.put_certificate` with a renewal)."""

    def get_renewal(self, serial_number: str) -> dict[str, str] | None:
        """The link of a renewed certificate (``successor``, ``renewed_at``, and ``revoke_at``,
        ``superseded_at`` when set; times ISO 8601 UTC), or None when it was not renewed."""
        ...

    def list_supersessions_due(self, now: datetime) -> list[str]:
        """Predecessors whose revocation as ``superseded`` was due at or before ``now`` and not handled."""
        ...

    def finish_supersession(self, predecessor: str, now: datetime) -> None:
        """Take a handled predecessor out of the due list (records ``superseded_at`` = ``now``)."""
        ...
