"""Storage of idempotency records (``IDEMPOTENCY#<sha256 of the key>``): the first response given
for an idempotency key, for its window (24 h)."""

from __future__ import annotations

from typing import Protocol

from ..records import IdempotencyRecord


class IdempotencyRecords(Protocol):
    """Idempotency records; they are written with the certificate (:meth:`Certificates.put_certificate`)."""

    def get_idempotency(self, key_hash: str) -> IdempotencyRecord | None:
        """The record of ``key_hash`` (hex SHA-256 of the key), or None. A record whose window has
        passed may still be returned (TTL deletion lags): the caller checks ``expires_at``."""
        ...
