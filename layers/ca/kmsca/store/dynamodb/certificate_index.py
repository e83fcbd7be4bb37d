"""The certificates of a CA by notAfter in DynamoDB: :class:`~kmsca.store.certificate_index.CertificateIndex`
on the ``ByCaExpiry`` index (template.yaml; partition ``ca``, sort ``not_after``, the listing's
attributes projected). Never a Scan: one read is one Query.

This module owns the Query (index name, key condition) and the mapping between an
:class:`~kmsca.store.certificate_index.IndexPosition` and DynamoDB's ``ExclusiveStartKey`` /
``LastEvaluatedKey`` (``pk``, ``ca``, ``not_after``; the ``pk`` built and parsed by
:mod:`kmsca.table_keys`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...records import UnreadableRecord, iso, parse_iso, serial_of_key
from ...table_keys import certificate_key, serial_of
from ..certificate_index import IndexedCertificate, IndexPage, IndexPosition
from .table import LIST_INDEX, DynamoDbTable, _plain, _string


def key_condition(
    ca: str, not_after_from: datetime | None, not_after_to: datetime | None
) -> tuple[str, dict[str, Any]]:
    """The ``KeyConditionExpression`` and its ``ExpressionAttributeValues`` for a notAfter range
    (:meth:`~kmsca.store.certificate_index.CertificateIndex.certificates_by_expiry`)."""
    condition = "ca = :ca"
    values: dict[str, Any] = {":ca": {"S": ca}}
    if not_after_from and not_after_to:
        condition += " AND not_after BETWEEN :after AND :before"
    elif not_after_from:
        condition += " AND not_after >= :after"
    elif not_after_to:
        condition += " AND not_after < :before"
    if not_after_from:
        values[":after"] = {"S": iso(not_after_from)}
    if not_after_to:
        values[":before"] = {"S": iso(not_after_to)}
    return condition, values


def start_key(position: IndexPosition) -> dict[str, Any]:
    """The ``ExclusiveStartKey`` of a position (the table's key and the index's keys)."""
    return {
        "pk": {"S": certificate_key(position.serial_number)},
        "ca": {"S": position.ca},
        "not_after": {"S": position.not_after},
    }


def position_of(key: dict[str, Any]) -> IndexPosition:
    """The position of a ``LastEvaluatedKey`` or of an index item (ValueError: not a certificate's)."""
    return IndexPosition(_string(key, "ca"), _string(key, "not_after"), serial_of(_string(key, "pk")))


def indexed_certificate(item: dict[str, Any]) -> IndexedCertificate:
    """The entry of one raw ``ByCaExpiry`` item (ValueError on an unreadable time or key)."""
    v = _plain(item)
    return IndexedCertificate(
        serial_number=str(v.get("serial_number", "")),
        not_after=parse_iso(v["not_after"]),
        status=str(v.get("status", "")),
        subject=str(v.get("subject", "")),
        profile=str(v.get("profile", "")),
        issued_at=parse_iso(v["issued_at"]),
        position=position_of(item),
        sans=tuple(str(s) for s in v.get("sans", [])),
        requested_by=v.get("requested_by"),
        acm_certificate_arn=v.get("acm_certificate_arn"),
        revocation_reason=v.get("revocation_reason"),
        predecessor=v.get("predecessor"),
    )


class DynamoDbCertificateIndex(DynamoDbTable):
    """:class:`~kmsca.store.certificate_index.CertificateIndex` on the table's ``ByCaExpiry`` index."""

    def certificates_by_expiry(
        self,
        ca: str,
        not_after_from: datetime | None = None,
        not_after_to: datetime | None = None,
        limit: int | None = None,
        start: IndexPosition | None = None,
    ) -> IndexPage:
        """One Query of ``ByCaExpiry`` (``Limit`` = ``limit`` when given; ``ExclusiveStartKey`` from
        ``start``); see the protocol for the range. ``resume`` is the ``LastEvaluatedKey``'s position;
        an item that cannot be decoded is in ``unreadable``, not in ``certificates``.

        Raises:
            kmsca.errors.AwsCallFailed: the Query failed (e.g. a start key DynamoDB refuses).
        """
        condition, values = key_condition(ca, not_after_from, not_after_to)
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if limit is not None:
            request["Limit"] = limit
        if start is not None:
            request["ExclusiveStartKey"] = start_key(start)
        response = self._client.query(**request)
        last = response.get("LastEvaluatedKey")
        certificates, unreadable = [], []
        for item in response["Items"]:
            try:
                certificates.append(indexed_certificate(item))
            except (ValueError, KeyError, TypeError) as exc:
                key = str(item.get("pk", {}).get("S", ""))
                unreadable.append(UnreadableRecord(key[:80], f"not listed: {exc}", serial_of_key(key)))
        return IndexPage(certificates, position_of(last) if last is not None else None, unreadable)
