"""Storage of expiry notice markers (``NOTICE#<serial>#<days>``, ``NOTICE#CA#<ca>#<serial>#<days>``):
one marker per certificate and threshold, written before the notice goes out, so that each notice
is sent once per threshold also when the expiry job runs twice (:mod:`kmsca.expiry`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class NoticeMarkers(Protocol):
    """Markers of the expiry notices sent."""

    def claim_notice(self, key: str, expires_at: datetime) -> bool:
        """Write the marker ``key`` (a :func:`kmsca.table_keys.notice_key`) unless it exists;
        ``expires_at`` is when it may be deleted (TTL). Returns False when it existed (the notice
        was sent by an earlier run)."""
        ...

    def release_notice(self, key: str) -> None:
        """Delete the marker ``key`` (its notice could not be sent: the next run sends it)."""
        ...
