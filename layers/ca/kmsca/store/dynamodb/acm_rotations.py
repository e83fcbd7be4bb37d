"""ACM rotations in DynamoDB: :class:`~kmsca.store.acm_rotations.AcmRotations`.

The current certificate behind an ACM ARN carries ``acm_managed = active``, which puts it in the
sparse index ``AcmByExpiry`` (partition ``acm_managed``, sort ``not_after``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ...records import STATUS_ISSUED, STATUS_REVOKED, CertificateRecord, crl_entry_text, iso
from ...table_keys import certificate_key
from .table import ACM_ACTIVE, ACM_PENDING, DynamoDbTable, _condition_failed, _item


class DynamoDbAcmRotations(DynamoDbTable):
    """:class:`~kmsca.store.acm_rotations.AcmRotations` on the table."""

    def list_acm_due(self, not_after_before: datetime) -> list[tuple[str, str]]:
        """(serial number, ACM ARN) of every ACM ARN this CA manages whose current certificate is due
        for rotation: notAfter before ``not_after_before``, or revoked (an operator revoked it, e.g.
        for keyCompromise: the ARN then gets a fresh key at the next run instead of at expiry).

        One Query of the sparse ``AcmByExpiry`` index (one page per ~8,000 ARNs; ACM allows 2,500
        imported certificates), earliest expiry first.
        """
        paginator = self._client.get_paginator("query")
        due = []
        for page in paginator.paginate(
            TableName=self._table,
            IndexName="AcmByExpiry",
            KeyConditionExpression="acm_managed = :active",
            ExpressionAttributeValues={":active": {"S": ACM_ACTIVE}},
        ):
            for item in page["Items"]:
                expiring = item["not_after"]["S"] < iso(not_after_before)
                if expiring or item.get("status", {}).get("S") == STATUS_REVOKED:
                    due.append((item["serial_number"]["S"], item["acm_certificate_arn"]["S"]))
        return due

    def claim_rotation(self, serial_number: str, now: datetime, lease: timedelta) -> bool:
        """Take the rotation lease of an ACM-managed certificate (conditional UpdateItem), so two
        overlapping rotation runs never rotate the same ARN twice. False when another run holds it."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": certificate_key(serial_number)}},
                UpdateExpression="SET rotation_lease_until = :until",
                ConditionExpression=(
                    "acm_managed = :active AND (attribute_not_exists(rotation_lease_until) "
                    "OR rotation_lease_until < :now)"
                ),
                ExpressionAttributeValues=_item({":until": iso(now + lease), ":now": iso(now), ":active": ACM_ACTIVE}),
            )
            return True
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise

    def release_rotation(self, serial_number: str) -> None:
        """Give the rotation lease back (after a failed rotation, so the next run retries)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": certificate_key(serial_number)}},
            UpdateExpression="REMOVE rotation_lease_until",
        )

    def record_rotation(
        self, new: CertificateRecord, old_serial_number: str, now: datetime, old_revoked: bool = False
    ) -> None:
        """Atomically (TransactWriteItems) record the new certificate behind the ARN and revoke the
        superseded one (reason ``superseded``; it leaves the AcmByExpiry index). The revocation
        reaches CRL publication and the KeyValueStore sync through the table stream. An old
        certificate that was already revoked (``old_revoked``) keeps its revocation unchanged."""
        values: dict[str, Any] = {":revoked": STATUS_REVOKED, ":new": new.serial_number}
        if old_revoked:
            update = "SET superseded_by = :new REMOVE acm_managed, rotation_lease_until"
            condition = "#status = :revoked"
        else:
            update = (
                "SET #status = :revoked, revoked_at = :now, revocation_reason = :superseded, revoked_ca = ca, "
                "crl_entry = :crl_entry, superseded_by = :new REMOVE acm_managed, rotation_lease_until"
            )
            condition = "#status = :issued"
            values.update(
                {
                    ":issued": STATUS_ISSUED,
                    ":now": iso(now),
                    ":superseded": "superseded",
                    ":crl_entry": crl_entry_text(now, "superseded", None),
                }
            )
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"pk": {"S": certificate_key(new.serial_number)}},
                            "UpdateExpression": "SET acm_managed = :active REMOVE acm_state, acm_pending_since",
                            "ConditionExpression": "acm_managed = :pending",
                            "ExpressionAttributeValues": _item({":active": ACM_ACTIVE, ":pending": ACM_PENDING}),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"pk": {"S": certificate_key(old_serial_number)}},
                            "UpdateExpression": update,
                            "ConditionExpression": condition,
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": _item(values),
                        }
                    },
                ],
                ClientRequestToken=new.fingerprint_sha256[:36],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            current = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": certificate_key(new.serial_number)}}, ConsistentRead=True
            ).get("Item", {})
            if current.get("acm_managed", {}).get("S") != ACM_ACTIVE:
                raise

    def mark_acm_missing(self, serial_number: str, now: datetime) -> None:
        """ACM says the ARN no longer exists: stop managing it (leaves the AcmByExpiry index)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": certificate_key(serial_number)}},
            UpdateExpression=(
                "SET acm_status = :missing, acm_missing_since = :now REMOVE acm_managed, rotation_lease_until"
            ),
            ExpressionAttributeValues=_item({":missing": "missing", ":now": iso(now)}),
        )
