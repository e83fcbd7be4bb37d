"""Revocations read from the table's DynamoDB stream (the CRL and KeyValueStore functions' trigger)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..records import STATUS_REVOKED, RevokedEntry, UnreadableRecord, parse_crl_entry
from .dynamodb.table import _string


def revoked_entries_from_stream(
    records: Iterable[Mapping[str, Any]], ca: str | None = None, problems: list[UnreadableRecord] | None = None
) -> list[RevokedEntry]:
    """Revocations in a DynamoDB stream batch (``NewImage`` of certificate items that are revoked).

    The stream record carries the item itself, so these are known even before the eventually
    consistent ``RevokedByCa`` index shows them. A record that cannot be read is reported in
    ``problems`` and skipped; it never stops the others.

    Args:
        records: the ``Records`` of a Lambda DynamoDB-stream event (NEW_AND_OLD_IMAGES).
        ca: only revocations of this CA (``revoked_ca``); None for all.
    """
    entries = []
    for record in records:
        stream = record.get("dynamodb") if isinstance(record, dict) else None
        image = stream.get("NewImage") if isinstance(stream, dict) else None
        if not isinstance(image, dict) or _string(image, "status") != STATUS_REVOKED or "crl_entry" not in image:
            continue
        if ca is not None and (_string(image, "revoked_ca") or _string(image, "ca")) != ca:
            continue
        entry = parse_crl_entry(
            _string(image, "pk"), _string(image, "crl_entry"), _string(image, "not_after"), problems
        )
        if entry is not None:
            entries.append(entry)
    return entries
