"""Revocations in DynamoDB: :class:`~kmsca.store.revocations.Revocations`.

A revoked certificate carries ``revoked_ca``, which puts it in the sparse index ``RevokedByCa``
(partition ``revoked_ca``, sort ``not_after``, projecting only the compact ``crl_entry``), so one
CA's revoked, unexpired certificates are a Query, never a Scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ...errors import CertificateNotFound
from ...records import (
    STATUS_ISSUED,
    STATUS_REVOKED,
    CertificateRecord,
    RevokedEntry,
    UnreadableRecord,
    crl_entry_text,
    iso,
    parse_crl_entry,
    parse_iso,
)
from ...table_keys import certificate_key, serial_of
from .certificate_items import certificate_record
from .table import DynamoDbTable, _condition_failed, _item, _string


class DynamoDbRevocations(DynamoDbTable):
    """:class:`~kmsca.store.revocations.Revocations` on the table."""

    def revoke(
        self, serial_number: str, reason: str, revoked_at: datetime, invalidity_date: datetime | None
    ) -> tuple[CertificateRecord, bool]:
        """Mark an issued certificate revoked (one conditional UpdateItem: it exists and is ``issued``).

        Setting ``revoked_ca`` puts the certificate in the sparse ``RevokedByCa`` index; the table
        stream carries the change to CRL publication and the KeyValueStore sync.

        Returns:
            (the record after the call, True when it was already revoked: then nothing changed and
            the first revocation is returned).

        Raises:
            CertificateNotFound: no certificate with that serial number.
        """
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":issued": STATUS_ISSUED,
            ":revoked": STATUS_REVOKED,
            ":revoked_at": iso(revoked_at),
            ":reason": reason,
            ":crl_entry": crl_entry_text(revoked_at, reason, invalidity_date),
        }
        update = (
            "SET #status = :revoked, revoked_at = :revoked_at, revocation_reason = :reason, revoked_ca = ca, "
            "crl_entry = :crl_entry"
        )
        if invalidity_date is not None:
            values[":invalidity_date"] = iso(invalidity_date)
            update += ", invalidity_date = :invalidity_date"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": certificate_key(serial_number)}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk) AND #status = :issued",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_item(values),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            if not old:
                raise CertificateNotFound(
                    f"no certificate with serial number {serial_number} was issued by this CA",
                    serial_number=serial_number,
                ) from exc
            return certificate_record(old), True
        return certificate_record(response["Attributes"]), False

    def list_revoked(
        self, ca: str, not_after_from: datetime, problems: list[UnreadableRecord] | None = None
    ) -> Iterator[RevokedEntry]:
        """Revoked certificates of one CA whose notAfter is at or after ``not_after_from``.

        A Query of the sparse ``RevokedByCa`` index (never a Scan), one call per 1 MB page. An item
        that cannot be read is reported in ``problems`` and skipped (see
        :func:`~kmsca.records.parse_crl_entry`); it never stops the listing of the others.
        """
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            IndexName="RevokedByCa",
            KeyConditionExpression="revoked_ca = :ca AND not_after >= :from",
            ExpressionAttributeValues={":ca": {"S": ca}, ":from": {"S": iso(not_after_from)}},
        )
        for page in pages:
            for item in page["Items"]:
                entry = parse_crl_entry(
                    _string(item, "pk"), _string(item, "crl_entry"), _string(item, "not_after"), problems
                )
                if entry is not None:
                    yield entry

    def still_revoked(self, serial_numbers: list[str], now: datetime) -> set[str]:
        """Those of ``serial_numbers`` whose certificate the table (consistent reads, not the lagging
        index) shows revoked and unexpired at ``now``, or revoked with an unreadable notAfter.

        One BatchGetItem per 100 serial numbers. The KeyValueStore reconcile asks this before it
        deletes keys, so it never deletes the key of a certificate revoked while it ran.
        """
        found: set[str] = set()
        for start in range(0, len(serial_numbers), 100):
            keys: list[Any] = [{"pk": {"S": certificate_key(s)}} for s in serial_numbers[start : start + 100]]
            while keys:
                response = self._client.batch_get_item(
                    RequestItems={
                        self._table: {
                            "Keys": keys,
                            "ConsistentRead": True,
                            "ProjectionExpression": "pk, #status, not_after",
                            "ExpressionAttributeNames": {"#status": "status"},
                        }
                    }
                )
                for item in response["Responses"].get(self._table, []):
                    if _string(item, "status") != STATUS_REVOKED:
                        continue
                    try:
                        expired = parse_iso(_string(item, "not_after")) < now
                    except ValueError:
                        expired = False  # unreadable: keep the key rather than admit a revoked certificate
                    if not expired:
                        found.add(serial_of(_string(item, "pk")))
                keys = list(response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", []))
        return found
