"""Certificates pending their ACM import, in DynamoDB: :class:`~kmsca.store.acm_imports.AcmImports`.

A certificate recorded *before* its ACM import carries ``acm_managed = pending`` (index
``AcmByExpiry``) until the import is recorded, so the rotation run finds every unfinished import
with a Query of that index and repairs it.
"""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from ...errors import PendingImportGone
from ...records import (
    STATUS_ISSUED,
    STATUS_REVOKED,
    CertificateRecord,
    IdempotencyRecord,
    crl_entry_text,
    iso,
    parse_iso,
)
from ...table_keys import certificate_key
from ..acm_imports import IMPORT_FAILED_REASON, PendingImport
from .certificate_items import certificate_item, certificate_record
from .certificates import DynamoDbCertificates
from .table import ACM_ACTIVE, ACM_PENDING, IMPORT_FAILED, PENDING_IMPORT, _condition_failed, _item


class DynamoDbAcmImports(DynamoDbCertificates):
    """:class:`~kmsca.store.acm_imports.AcmImports` on the table."""

    def put_pending_import(self, record: CertificateRecord, now: datetime, supersedes: str | None = None) -> None:
        """Record a certificate *before* importing it into ACM (state ``pending_import``).

        It is in the inventory (revocable) from this moment, in the ``AcmByExpiry`` index under
        ``acm_managed = pending`` (not ``active``: it is not rotated), with ``supersedes`` = the
        certificate it replaces behind ``record.acm_certificate_arn`` (rotation), or no ARN (first
        import). No private key is stored. One conditional PutItem (the serial number is new).

        Raises:
            SerialNumberCollision: another certificate has this serial number.
        """
        item = certificate_item(record)
        item.update(
            _item(
                {
                    "acm_managed": ACM_PENDING,
                    "acm_state": PENDING_IMPORT,
                    "acm_pending_since": iso(now),
                    "supersedes": supersedes,
                }
            )
        )
        self._write_certificate(record, item, "attribute_not_exists(pk)", {}, {}, None, now, pending=True)

    def finish_import(
        self, record: CertificateRecord, idempotency: IdempotencyRecord | None = None, now: datetime | None = None
    ) -> None:
        """A first ACM import succeeded: record its ARN; the certificate becomes the active one behind
        it (and the idempotency record is written with it). One PutItem or TransactWriteItems,
        conditional on the certificate still pending and not revoked.

        Raises:
            PendingImportGone: it is no longer pending (failed or revoked meanwhile).
            IdempotencyKeyInUse, WriteConflict: as :meth:`put_certificate`.
        """
        self._write_certificate(
            record,
            certificate_item(record),
            "acm_managed = :pending AND #status = :issued",
            {"#status": "status"},
            {":pending": ACM_PENDING, ":issued": STATUS_ISSUED},
            idempotency,
            now,
            pending=False,
        )

    def list_pending_imports(self) -> list[str]:
        """Serial numbers of certificates recorded before an ACM import that is not recorded as done
        (a Query of ``AcmByExpiry`` under ``acm_managed = pending``; never a Scan)."""
        paginator = self._client.get_paginator("query")
        return [
            item["serial_number"]["S"]
            for page in paginator.paginate(
                TableName=self._table,
                IndexName="AcmByExpiry",
                KeyConditionExpression="acm_managed = :pending",
                ExpressionAttributeValues={":pending": {"S": ACM_PENDING}},
            )
            for item in page["Items"]
        ]

    def get_pending_import(self, serial_number: str) -> PendingImport | None:
        """The pending import of a certificate (one GetItem); None when it is not pending (any more)."""
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": certificate_key(serial_number)}}, ConsistentRead=True
        )
        item = response.get("Item")
        if not item or item.get("acm_managed", {}).get("S") != ACM_PENDING:
            return None
        return PendingImport(
            record=certificate_record(item),
            since=parse_iso(item["acm_pending_since"]["S"]),
            supersedes=item.get("supersedes", {}).get("S"),
        )

    def adopt_import(self, serial_number: str, arn: str) -> None:
        """A first import whose recording was lost is found in ACM: record its ARN; the certificate
        becomes the active one behind it (conditional UpdateItem: still pending).

        Raises:
            PendingImportGone: it is no longer pending.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": certificate_key(serial_number)}},
                UpdateExpression=(
                    "SET acm_managed = :active, acm_certificate_arn = :arn REMOVE acm_state, acm_pending_since"
                ),
                ConditionExpression="acm_managed = :pending",
                ExpressionAttributeValues=_item({":active": ACM_ACTIVE, ":arn": arn, ":pending": ACM_PENDING}),
            )
        except ClientError as exc:
            if _condition_failed(exc):
                raise PendingImportGone(
                    f"certificate {serial_number} is no longer pending its ACM import", serial_number=serial_number
                ) from exc
            raise

    def fail_pending_import(self, record: CertificateRecord, now: datetime) -> bool:
        """The ACM import of a pending certificate did not happen: it was never served and its key is
        gone, so it is revoked (``cessationOfOperation``; CRLs and the KeyValueStore get it through the
        stream like any revocation) and leaves the pending index (``acm_state = import_failed``).
        One PutItem, conditional on the certificate still pending and not revoked.

        Returns:
            False when it was no longer pending and not revoked (nothing changed).
        """
        item = certificate_item(record)
        item.pop("acm_managed", None)
        item.update(
            _item(
                {
                    "status": STATUS_REVOKED,
                    "revoked_at": iso(now),
                    "revocation_reason": IMPORT_FAILED_REASON,
                    "revoked_ca": record.ca,
                    "crl_entry": crl_entry_text(now, IMPORT_FAILED_REASON, None),
                    "acm_state": IMPORT_FAILED,
                }
            )
        )
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="acm_managed = :pending AND #status = :issued",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_item({":pending": ACM_PENDING, ":issued": STATUS_ISSUED}),
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def abandon_pending_import(self, serial_number: str) -> None:
        """A pending certificate that is revoked already and not served by ACM: only leave the index."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": certificate_key(serial_number)}},
                UpdateExpression="SET acm_state = :failed REMOVE acm_managed, acm_pending_since",
                ConditionExpression="acm_managed = :pending",
                ExpressionAttributeValues=_item({":failed": IMPORT_FAILED, ":pending": ACM_PENDING}),
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
