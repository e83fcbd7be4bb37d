"""The certificate inventory: a narrow interface and its DynamoDB adapter.

Table layout (template.yaml ``CaTable``; partition key ``pk``, no sort key; the keys are built and
parsed by :mod:`kmsca.table_keys` only):

- ``CERT#<serial>``: one item per issued certificate (attributes of
  :class:`~kmsca.records.CertificateRecord`). A revoked certificate also carries ``revoked_ca``,
  which puts it in the sparse index ``RevokedByCa`` (partition ``revoked_ca``, sort ``not_after``,
  projecting only the compact ``crl_entry``), so one CA's revoked, unexpired certificates are a
  Query, never a Scan. The current certificate behind an ACM ARN carries ``acm_managed``, which
  puts it in the sparse index ``AcmByExpiry`` (partition ``acm_managed``, sort ``not_after``).
  A certificate recorded *before* its ACM import (:meth:`DynamoDbCertificateStore.put_pending_import`)
  carries ``acm_managed = pending`` until the import is recorded, so the rotation run finds every
  unfinished import with a Query of the same index (``acm_managed = pending``) and repairs it.
- ``CA#<name>``: the root and issuing CA certificates and their KMS key ARNs.
- ``IDEMPOTENCY#<sha256 of key>``: the first response for an idempotency key, with a TTL
  (``expires_at``, epoch seconds). DynamoDB's TTL deletion can lag by days, so a record whose
  ``expires_at`` has passed is treated as absent and may be overwritten (conditional write).

AWS errors are translated here and only here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError
from cryptography import x509

from .errors import CertificateNotFound, RenewalRefused, SerialNumberCollision
from .records import (
    STATUS_ISSUED,
    STATUS_REVOKED,
    CaRecord,
    CertificateRecord,
    IdempotencyRecord,
    RevokedEntry,
    UnreadableRecord,
    crl_entry_text,
    iso,
    parse_crl_entry,
    parse_iso,
    pem,
)
from .table_keys import (
    ca_key,
    certificate_key,
    crl_number_key,
    idempotency_key,
    predecessor_of,
    renewal_key,
    serial_of,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The listing index (template.yaml): partition ``ca``, sort ``not_after``.
LIST_INDEX = "ByCaExpiry"
ACM_ACTIVE = "active"
ACM_PENDING = "pending"
PENDING_IMPORT = "pending_import"
IMPORT_FAILED = "import_failed"
#: Reason recorded for a certificate whose ACM import failed (it was never served; its key is gone).
IMPORT_FAILED_REASON = "cessationOfOperation"
#: Errors after which a write may or may not have been applied (the reply was lost).
_AMBIGUOUS_CODES = {"InternalServerError", "ServiceUnavailable", "RequestTimeout", "ThrottlingException"}
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


#: Partition of the ``ByCaExpiry`` index that holds renewals whose predecessor is to be revoked
#: (``superseded``) at a time: ``RENEWAL#<predecessor>`` items carry ``ca`` = this and
#: ``not_after`` = the time the predecessor is due for revocation, until the sweep revokes it.
SUPERSEDE_DUE = "#supersede"


@dataclass(frozen=True)
class Renewal:
    """A certificate that renews another.

    Attributes:
        predecessor: canonical serial number of the certificate renewed; it must be ``issued``
            and not renewed before.
        revoke_at: when the predecessor is to be revoked as ``superseded``, UTC; None: never.
    """

    predecessor: str
    revoke_at: datetime | None = None


class IdempotencyKeyInUse(Exception):
    """Another request stored a result for the same idempotency key first (within its window)."""


class WriteConflict(Exception):
    """DynamoDB cancelled a transaction because another one was writing the same item
    (``TransactionConflict``): nothing was written; retrying is safe."""


class PendingImportGone(Exception):
    """The certificate is no longer pending its ACM import (another run finished or failed it)."""


@dataclass(frozen=True)
class PendingImport:
    """A certificate recorded before its ACM import, not yet recorded as imported.

    Attributes:
        record: the certificate; ``acm_certificate_arn`` is the target of a rotation, or None for a
            first import (its ARN is known only once ACM answers).
        since: when it was recorded.
        supersedes: serial number of the certificate it replaces behind the ARN (rotation), or None.
    """

    record: CertificateRecord
    since: datetime
    supersedes: str | None


class CertificateStore(Protocol):
    """What the CA needs from storage."""

    def get_cas(self, names: list[str]) -> dict[str, CaRecord]: ...

    def put_ca(self, record: CaRecord) -> CaRecord: ...

    def replace_ca(self, record: CaRecord, previous_serial: str) -> CaRecord: ...

    def put_certificate(
        self,
        record: CertificateRecord,
        idempotency: IdempotencyRecord | None = None,
        now: datetime | None = None,
        renewal: Renewal | None = None,
    ) -> None: ...

    def put_pending_import(self, record: CertificateRecord, now: datetime, supersedes: str | None = None) -> None: ...

    def finish_import(
        self, record: CertificateRecord, idempotency: IdempotencyRecord | None = None, now: datetime | None = None
    ) -> None: ...

    def fail_pending_import(self, record: CertificateRecord, now: datetime) -> bool: ...

    def get_certificate(self, serial_number: str) -> CertificateRecord | None: ...

    def get_idempotency(self, key_hash: str) -> IdempotencyRecord | None: ...

    def revoke(
        self, serial_number: str, reason: str, revoked_at: datetime, invalidity_date: datetime | None
    ) -> tuple[CertificateRecord, bool]: ...

    def list_revoked(
        self, ca: str, not_after_from: datetime, problems: list[UnreadableRecord] | None = None
    ) -> Iterator[RevokedEntry]: ...

    def still_revoked(self, serial_numbers: list[str], now: datetime) -> set[str]: ...

    def next_crl_number(self, ca: str) -> int: ...

    def list_acm_due(self, not_after_before: datetime) -> list[tuple[str, str]]: ...

    def claim_rotation(self, serial_number: str, now: datetime, lease: timedelta) -> bool: ...

    def release_rotation(self, serial_number: str) -> None: ...

    def record_rotation(
        self, new: CertificateRecord, old_serial_number: str, now: datetime, old_revoked: bool = False
    ) -> None: ...

    def mark_acm_missing(self, serial_number: str, now: datetime) -> None: ...

    def list_pending_imports(self) -> list[str]: ...

    def get_pending_import(self, serial_number: str) -> PendingImport | None: ...

    def adopt_import(self, serial_number: str, arn: str) -> None: ...

    def abandon_pending_import(self, serial_number: str) -> None: ...


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _string(item: dict[str, Any], name: str) -> str:
    """A string attribute of a raw item, or "" when it is missing or of another type."""
    value = item.get(name, {})
    return value.get("S", "") if isinstance(value, dict) and isinstance(value.get("S"), str) else ""


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _refuse_renewal(exc: ClientError, count: int) -> None:
    """Raise ``RenewalRefused`` when a renewal transaction failed on its last ``count`` items
    (the predecessor's ConditionCheck, the ``RENEWAL#`` Put)."""
    reasons = exc.response.get("CancellationReasons", [])
    codes = [r.get("Code") for r in reasons][-count:]
    cancelled = exc.response.get("Error", {}).get("Code") == "TransactionCanceledException"
    if cancelled and "ConditionalCheckFailed" in codes:
        raise RenewalRefused(
            "the certificate to renew is revoked, unknown or already renewed (show it to see its successor); "
            "nothing was issued"
        ) from exc


def _ambiguous(exc: Exception) -> bool:
    """True when a write may have been applied although the call failed (lost reply, timeout)."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") in _AMBIGUOUS_CODES
    return isinstance(exc, BotoCoreError)


class DynamoDbCertificateStore:
    """:class:`CertificateStore` on one DynamoDB table.

    Args:
        client: boto3 DynamoDB client (injected; build it once per container).
        table_name: the table's name.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # CA records -------------------------------------------------------------------------

    def get_cas(self, names: list[str]) -> dict[str, CaRecord]:
        """Read CA records by name with one BatchGetItem; missing names are absent from the result."""
        response = self._client.batch_get_item(
            RequestItems={self._table: {"Keys": [{"pk": {"S": ca_key(n)}} for n in names], "ConsistentRead": True}}
        )
        records = {}
        for raw in response["Responses"].get(self._table, []):
            values = _plain(raw)
            records[values["name"]] = CaRecord(
                name=values["name"],
                certificate=x509.load_pem_x509_certificate(values["certificate"].encode("ascii")),
                key_id=values["key_id"],
                created_at=parse_iso(values["created_at"]),
            )
        return records

    def put_ca(self, record: CaRecord) -> CaRecord:
        """Store a CA record unless one of that name exists (PutItem, condition: new key).

        Returns:
            The stored record: ``record``, or the one that was there first (never replaced).
        """
        return self._put_ca(record, None)

    def replace_ca(self, record: CaRecord, previous_serial: str) -> CaRecord:
        """Replace a CA record's certificate (a re-issue, same key) if it still holds ``previous_serial``
        (PutItem, condition on the serial number).

        Returns:
            The stored record: ``record``, or the one a concurrent re-issue wrote first.
        """
        return self._put_ca(record, previous_serial)

    def _put_ca(self, record: CaRecord, previous_serial: str | None) -> CaRecord:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if previous_serial is not None:
            condition = {
                "ConditionExpression": "serial_number = :previous",
                "ExpressionAttributeValues": {":previous": {"S": previous_serial}},
            }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(
                    {
                        "pk": ca_key(record.name),
                        "record_type": "ca",
                        "name": record.name,
                        "certificate": pem(record.certificate),
                        "serial_number": record.serial_number,
                        "subject": record.certificate.subject.rfc4514_string(),
                        "not_after": iso(record.certificate.not_valid_after_utc),
                        "key_id": record.key_id,
                        "created_at": iso(record.created_at),
                    }
                ),
                **condition,
            )
            return record
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
        return self.get_cas([record.name])[record.name]

    # Certificates -----------------------------------------------------------------------

    @staticmethod
    def _certificate_item(record: CertificateRecord) -> dict[str, Any]:
        return _item(
            {
                "pk": certificate_key(record.serial_number),
                "record_type": "certificate",
                "serial_number": record.serial_number,
                "ca": record.ca,
                "subject": record.subject,
                "issuer": record.issuer,
                "sans": list(record.sans) or None,
                "profile": record.profile,
                "not_before": iso(record.not_before),
                "not_after": iso(record.not_after),
                "fingerprint_sha256": record.fingerprint_sha256,
                "spki_sha256": record.spki_sha256,
                "status": record.status,
                "certificate": record.certificate_pem,
                "issued_at": iso(record.issued_at),
                "key_type": record.key_type,
                "acm_certificate_arn": record.acm_certificate_arn,
                # the current certificate behind an ACM ARN: in the sparse AcmByExpiry index
                "acm_managed": ACM_ACTIVE if record.acm_certificate_arn else None,
                "requested_by": record.requested_by,
                "predecessor": record.predecessor,
                "acm_target": record.acm_target,
                "acm_account_id": record.acm_account_id,
            }
        )

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
            self._certificate_item(record),
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

    def get_renewal(self, serial_number: str) -> dict[str, str] | None:
        """The ``RENEWAL#`` link of a certificate that was renewed (``successor``, ``renewed_at``,
        ``revoke_at`` and ``superseded_at`` when set), or None. One GetItem."""
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": renewal_key(serial_number)}}, ConsistentRead=True
        )
        if "Item" not in response:
            return None
        values = _plain(response["Item"])
        keys = ("successor", "renewed_at", "revoke_at", "superseded_at")
        return {k: str(values[k]) for k in keys if k in values}

    def list_supersessions_due(self, now: datetime) -> list[str]:
        """Predecessors whose renewal asked for their revocation (``superseded``) at or before
        ``now`` and that the sweep has not handled yet. One Query of ``ByCaExpiry`` per 1 MB page."""
        paginator = self._client.get_paginator("query")
        due: list[str] = []
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=LIST_INDEX,
            KeyConditionExpression="ca = :due AND not_after <= :now",
            ExpressionAttributeValues={":due": {"S": SUPERSEDE_DUE}, ":now": {"S": iso(now)}},
        ):
            due.extend(predecessor_of(_string(item, "pk")) for item in page["Items"])
        return due

    def finish_supersession(self, predecessor: str, now: datetime) -> None:
        """Take a handled renewal out of the due list (REMOVE its index keys, SET ``superseded_at``)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": renewal_key(predecessor)}},
            UpdateExpression="REMOVE ca, not_after SET superseded_at = :now",
            ExpressionAttributeValues={":now": {"S": iso(now)}},
        )

    def put_pending_import(self, record: CertificateRecord, now: datetime, supersedes: str | None = None) -> None:
        """Record a certificate *before* importing it into ACM (state ``pending_import``).

        It is in the inventory (revocable) from this moment, in the ``AcmByExpiry`` index under
        ``acm_managed = pending`` (not ``active``: it is not rotated), with ``supersedes`` = the
        certificate it replaces behind ``record.acm_certificate_arn`` (rotation), or no ARN (first
        import). No private key is stored. One conditional PutItem (the serial number is new).

        Raises:
            SerialNumberCollision: another certificate has this serial number.
        """
        item = self._certificate_item(record)
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
            self._certificate_item(record),
            "acm_managed = :pending AND #status = :issued",
            {"#status": "status"},
            {":pending": ACM_PENDING, ":issued": STATUS_ISSUED},
            idempotency,
            now,
            pending=False,
        )

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

    def _written_already(
        self, exc: ClientError, record: CertificateRecord, pending: bool, condition_new: bool
    ) -> bool:
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
                    raise IdempotencyKeyInUse("the idempotency key was used by another request") from exc
                if "TransactionConflict" in codes:
                    raise WriteConflict("another request is writing the same idempotency key") from exc
                return False
            existing = reasons[0].get("Item") if reasons else None  # type: ignore[assignment]
        else:
            return False
        if self._is_ours(existing, record, pending):
            return True
        if condition_new:
            raise SerialNumberCollision(
                f"serial number {record.serial_number} is already recorded; nothing was issued"
            ) from exc
        raise PendingImportGone(f"certificate {record.serial_number} is no longer pending its ACM import") from exc

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
        return self._certificate_record(response["Item"])

    @staticmethod
    def _certificate_record(item: dict[str, Any]) -> CertificateRecord:
        v = _plain(item)
        return CertificateRecord(
            serial_number=v["serial_number"],
            ca=v["ca"],
            subject=v["subject"],
            issuer=v["issuer"],
            sans=tuple(v.get("sans", [])),
            profile=v["profile"],
            not_before=parse_iso(v["not_before"]),
            not_after=parse_iso(v["not_after"]),
            fingerprint_sha256=v["fingerprint_sha256"],
            spki_sha256=v["spki_sha256"],
            status=v["status"],
            certificate_pem=v["certificate"],
            issued_at=parse_iso(v["issued_at"]),
            revoked_at=parse_iso(v["revoked_at"]) if "revoked_at" in v else None,
            revocation_reason=v.get("revocation_reason"),
            invalidity_date=parse_iso(v["invalidity_date"]) if "invalidity_date" in v else None,
            key_type=v.get("key_type"),
            acm_certificate_arn=v.get("acm_certificate_arn"),
            requested_by=v.get("requested_by"),
            predecessor=v.get("predecessor"),
            acm_target=v.get("acm_target"),
            acm_account_id=v.get("acm_account_id"),
        )

    # Revocation ---------------------------------------------------------------------------

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
                    f"no certificate with serial number {serial_number} was issued by this CA"
                ) from exc
            return self._certificate_record(old), True
        return self._certificate_record(response["Attributes"]), False

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

    def next_crl_number(self, ca: str) -> int:
        """Reserve the next CRL number of a CA (RFC 5280 5.2.3): an atomic ADD on ``CRLNUMBER#<ca>``.

        Numbers strictly increase and are never handed out twice, even to concurrent callers; a
        reserved number whose CRL is never published leaves a gap, which RFC 5280 allows.
        """
        response = self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": crl_number_key(ca)}},
            UpdateExpression="ADD crl_number :one SET record_type = :type",
            ExpressionAttributeValues={":one": {"N": "1"}, ":type": {"S": "crl_number"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["crl_number"]["N"])

    # Idempotency ------------------------------------------------------------------------

    def get_idempotency(self, key_hash: str) -> IdempotencyRecord | None:
        """One GetItem; None when unknown (an expired record not yet deleted by TTL is returned
        and the caller checks ``expires_at``)."""
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": idempotency_key(key_hash)}}, ConsistentRead=True
        )
        if "Item" not in response:
            return None
        v = _plain(response["Item"])
        return IdempotencyRecord(
            key_hash=key_hash,
            request_hash=v["request_hash"],
            response=json.loads(v["response"]),
            expires_at=datetime.fromtimestamp(int(v["expires_at"]), tz=UTC),
        )

    # ACM-imported certificates (CloudFront origin) ---------------------------------------------

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
            # recorded already (a lost reply, or another run completed it)

    # Certificates recorded before their ACM import ------------------------------------------------

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
            record=self._certificate_record(item),
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
                raise PendingImportGone(f"certificate {serial_number} is no longer pending its ACM import") from exc
            raise

    def fail_pending_import(self, record: CertificateRecord, now: datetime) -> bool:
        """The ACM import of a pending certificate did not happen: it was never served and its key is
        gone, so it is revoked (``cessationOfOperation``; CRLs and the KeyValueStore get it through the
        stream like any revocation) and leaves the pending index (``acm_state = import_failed``).
        One PutItem, conditional on the certificate still pending and not revoked.

        Returns:
            False when it was no longer pending and not revoked (nothing changed).
        """
        item = self._certificate_item(record)
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
