"""Issued certificates in DynamoDB (``CERT#<serial>``): :class:`~kmsca.store.certificates.Certificates`,
and the conditional write every certificate write goes through (new serial number, idempotency
record and renewal link in one transaction, a lost reply retried once)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...errors import IdempotencyKeyInUse, PendingImportGone, RenewalRefused, SerialNumberCollision, WriteConflict
from ...records import STATUS_ISSUED, CertificateRecord, IdempotencyRecord, iso
from ...table_keys import certificate_key, idempotency_key, renewal_key
from ..certificates import Renewal
from .certificate_items import certificate_item, certificate_record
from .renewals import SUPERSEDE_DUE
from .table import ACM_PENDING, DynamoDbTable, _ambiguous, _item


def _refuse_renewal(exc: ClientError, count: int) -> None:
    """Raise ``RenewalRefused`` when a renewal transaction failed on its last ``count`` items
    (the predecessor's ConditionCheck, the ``RENEWAL#`` Put)."""
    reasons = exc.response.get("CancellationReasons", [])
    codes = [r.get("Code") for r in reasons][-count:]
    cancelled = exc.response.get("Error", {}).get("Code") == "TransactionCanceledException"
    if cancelled and "ConditionalCheckFailed" in codes:
        raise RenewalRefused(
            "the certificate to renew is revoked, unknown or already renewed (show it to see its successor); "
            "nothing was issued",
            cancellation_reasons=codes,
        ) from exc


class DynamoDbCertificates(DynamoDbTable):
    """:class:`~kmsca.store.certificates.Certificates` on the table."""

    def put_certificate(
        self,
        record: CertificateRecord,
        idempotency: IdempotencyRecord | None = None,
        now: datetime | None = None,
        renewal: Renewal | None = None,
    ) -> None:
        """Record a new certificate, and with it its idempotency record, atomically.

        With ``renewal`` the same transaction checks that the predecessor is ``issued``
        (ConditionCheck on ``CERT#<predecessor>``) and writes ``RENEWAL#<predecessor>`` (successor,
        and the supersession due time, in the ``ByCaExpiry`` index under :data:`SUPERSEDE_DUE`),
        only if the predecessor was never renewed: ``RenewalRefused`` otherwise, nothing written.

        One PutItem (no idempotency record) or one TransactWriteItems (with one). The certificate is
        written only if its serial number is new; the idempotency record only if its key is new or
        its window has passed (``expires_at`` before ``now``; DynamoDB's TTL deletion may lag).

        A write whose reply was lost (timeout, 5xx after the commit) is retried once; finding our own
        certificate already stored then is success, not a collision.

        Raises:
            SerialNumberCollision: another certificate has this serial number.
            IdempotencyKeyInUse: another request recorded a result for the key within its window.
            WriteConflict: a concurrent transaction was writing the same idempotency record; retry.
        """
        extra = self._renewal_items(record, renewal) if renewal else []
        self._write_certificate(
            record,
            certificate_item(record),
            "attribute_not_exists(pk)",
            {},
            {},
            idempotency,
            now,
            pending=False,
            extra=extra,
        )

    def _renewal_items(self, record: CertificateRecord, renewal: Renewal) -> list[dict[str, Any]]:
        link = {
            "pk": renewal_key(renewal.predecessor),
            "record_type": "renewal",
            "predecessor": renewal.predecessor,
            "successor": record.serial_number,
            "renewed_at": iso(record.issued_at),
        }
        if renewal.revoke_at is not None:
            link.update({"ca": SUPERSEDE_DUE, "not_after": iso(renewal.revoke_at), "revoke_at": iso(renewal.revoke_at)})
        return [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": certificate_key(renewal.predecessor)}},
                    "ConditionExpression": "#status = :issued",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {":issued": {"S": STATUS_ISSUED}},
                }
            },
            {"Put": {"TableName": self._table, "Item": _item(link), "ConditionExpression": "attribute_not_exists(pk)"}},
        ]

    def _write_certificate(
        self,
        record: CertificateRecord,
        item: dict[str, Any],
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        idempotency: IdempotencyRecord | None,
        now: datetime | None,
        *,
        pending: bool,
        extra: list[dict[str, Any]] | None = None,
    ) -> None:
        expression: dict[str, Any] = {"ConditionExpression": condition}
        if names:
            expression["ExpressionAttributeNames"] = names
        if values:
            expression["ExpressionAttributeValues"] = _item(values)
        for attempt in (1, 2):
            try:
                if idempotency is None and not extra:
                    self._client.put_item(
                        TableName=self._table, Item=item, ReturnValuesOnConditionCheckFailure="ALL_OLD", **expression
                    )
                else:
                    self._client.transact_write_items(
                        TransactItems=[
                            {
                                "Put": {
                                    "TableName": self._table,
                                    "Item": item,
                                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                                    **expression,
                                }
                            },
                            *([self._idempotency_put(idempotency, now)] if idempotency else []),
                            *(extra or []),
                        ],
                        # a retry of the same write within 10 minutes succeeds without applying it again
                        ClientRequestToken=record.fingerprint_sha256[:36],
                    )
                return
            except ClientError as exc:
                if extra:
                    _refuse_renewal(exc, len(extra))
                if self._written_already(exc, record, pending, condition_new="attribute_not_exists" in condition):
                    return
                if attempt == 1 and _ambiguous(exc):
                    continue  # the write may have been applied: write again; ours is then found above
                raise
            except BotoCoreError:
                if attempt == 1:
                    continue
                raise

    @staticmethod
    def _is_ours(existing: dict[str, Any] | None, record: CertificateRecord, pending: bool) -> bool:
        """True when the item that failed the condition is this very write, applied earlier (lost reply)."""
        if not existing or existing.get("fingerprint_sha256", {}).get("S") != record.fingerprint_sha256:
            return False
        return (existing.get("acm_managed", {}).get("S") == ACM_PENDING) == pending

    def _written_already(self, exc: ClientError, record: CertificateRecord, pending: bool, condition_new: bool) -> bool:
        """Translate a refused certificate write: True when the item that failed the condition is this
        very write, applied by an earlier attempt whose reply was lost; False when ``exc`` is no
        refusal (the caller decides); raises the domain error otherwise."""
        error = exc.response.get("Error", {}).get("Code")
        existing: dict[str, Any] | None
        if error == "ConditionalCheckFailedException":
            existing = exc.response.get("Item")  # type: ignore[assignment]
        elif error == "TransactionCanceledException":
            reasons = exc.response.get("CancellationReasons", [])
            codes = [r.get("Code") for r in reasons]
            if codes and codes[0] != "ConditionalCheckFailed":
                if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                    raise IdempotencyKeyInUse(
                        "the idempotency key was used by another request", serial_number=record.serial_number
                    ) from exc
                if "TransactionConflict" in codes:
                    raise WriteConflict(
                        "another request is writing the same idempotency key", serial_number=record.serial_number
                    ) from exc
                return False
            existing = reasons[0].get("Item") if reasons else None  # type: ignore[assignment]
        else:
            return False
        if self._is_ours(existing, record, pending):
            return True
        if condition_new:
            raise SerialNumberCollision(
                f"serial number {record.serial_number} is already recorded; nothing was issued",
                serial_number=record.serial_number,
            ) from exc
        raise PendingImportGone(
            f"certificate {record.serial_number} is no longer pending its ACM import",
            serial_number=record.serial_number,
        ) from exc

    def _idempotency_put(self, idempotency: IdempotencyRecord, now: datetime | None) -> dict[str, Any]:
        """The transaction's Put of an idempotency record: new, or replacing one whose window has
        passed (``expires_at`` <= now: TTL deletion lags, and an expired key must not block)."""
        item = _item(
            {
                "pk": idempotency_key(idempotency.key_hash),
                "record_type": "idempotency",
                "request_hash": idempotency.request_hash,
                "response": json.dumps(idempotency.response, separators=(",", ":")),
                "expires_at": int(idempotency.expires_at.timestamp()),
            }
        )
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if now is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "attribute_not_exists(pk) OR expires_at <= :now"
            put["ExpressionAttributeValues"] = {":now": {"N": str(int(now.timestamp()))}}
        return {"Put": put}

    def get_certificate(self, serial_number: str) -> CertificateRecord | None:
        """One GetItem by canonical serial number; None when unknown."""
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": certificate_key(serial_number)}}, ConsistentRead=True
        )
        if "Item" not in response:
            return None
        return certificate_record(response["Item"])
