"""The certificate inventory: a narrow interface and its DynamoDB adapter.

Table layout (template.yaml ``CaTable``; partition key ``pk``, no sort key):

- ``CERT#<serial>``: one item per issued certificate (attributes of
  :class:`~kmsca.records.CertificateRecord`). A revoked certificate also carries ``revoked_ca``,
  which puts it in the sparse index ``RevokedByCa`` (partition ``revoked_ca``, sort ``not_after``,
  projecting only the compact ``crl_entry``), so one CA's revoked, unexpired certificates are a
  Query, never a Scan. The current certificate behind an ACM ARN carries ``acm_managed``, which
  puts it in the sparse index ``AcmByExpiry`` (partition ``acm_managed``, sort ``not_after``).
- ``CA#<name>``: the root and issuing CA certificates and their KMS key ARNs.
- ``IDEMPOTENCY#<sha256 of key>``: the first response for an idempotency key, with a TTL
  (``expires_at``, epoch seconds).

AWS errors are translated here and only here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from cryptography import x509

from .errors import CertificateNotFound, SerialNumberCollision
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

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ACM_ACTIVE = "active"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class IdempotencyKeyInUse(Exception):
    """Another request stored a result for the same idempotency key first."""


class CertificateStore(Protocol):
    """What the CA needs from storage."""

    def get_cas(self, names: list[str]) -> dict[str, CaRecord]: ...

    def put_ca(self, record: CaRecord) -> CaRecord: ...

    def put_certificate(self, record: CertificateRecord, idempotency: IdempotencyRecord | None = None) -> None: ...

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
            RequestItems={self._table: {"Keys": [{"pk": {"S": f"CA#{n}"}} for n in names], "ConsistentRead": True}}
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
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(
                    {
                        "pk": f"CA#{record.name}",
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
                ConditionExpression="attribute_not_exists(pk)",
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
                "pk": f"CERT#{record.serial_number}",
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
            }
        )

    def put_certificate(self, record: CertificateRecord, idempotency: IdempotencyRecord | None = None) -> None:
        """Record a new certificate, and with it its idempotency record, atomically.

        One PutItem (no idempotency record) or one TransactWriteItems (with one); each item is
        written only if its key is new.

        Raises:
            SerialNumberCollision: the serial number is already recorded.
            IdempotencyKeyInUse: another request recorded a result for the idempotency key first.
        """
        item = self._certificate_item(record)
        condition = "attribute_not_exists(pk)"
        if idempotency is None:
            try:
                self._client.put_item(TableName=self._table, Item=item, ConditionExpression=condition)
            except ClientError as exc:
                if _condition_failed(exc):
                    raise SerialNumberCollision(
                        f"serial number {record.serial_number} is already recorded; nothing was issued"
                    ) from exc
                raise
            return
        idem_item = _item(
            {
                "pk": f"IDEMPOTENCY#{idempotency.key_hash}",
                "record_type": "idempotency",
                "request_hash": idempotency.request_hash,
                "response": json.dumps(idempotency.response, separators=(",", ":")),
                "expires_at": int(idempotency.expires_at.timestamp()),
            }
        )
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": condition}},
                    {"Put": {"TableName": self._table, "Item": idem_item, "ConditionExpression": condition}},
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise IdempotencyKeyInUse(idempotency.key_hash) from exc
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise SerialNumberCollision(
                    f"serial number {record.serial_number} is already recorded; nothing was issued"
                ) from exc
            raise

    def get_certificate(self, serial_number: str) -> CertificateRecord | None:
        """One GetItem by canonical serial number; None when unknown."""
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"CERT#{serial_number}"}}, ConsistentRead=True
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
                Key={"pk": {"S": f"CERT#{serial_number}"}},
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
            keys: list[Any] = [{"pk": {"S": f"CERT#{s}"}} for s in serial_numbers[start : start + 100]]
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
                        found.add(_string(item, "pk")[5:])
                keys = list(response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", []))
        return found

    def next_crl_number(self, ca: str) -> int:
        """Reserve the next CRL number of a CA (RFC 5280 5.2.3): an atomic ADD on ``CRLNUMBER#<ca>``.

        Numbers strictly increase and are never handed out twice, even to concurrent callers; a
        reserved number whose CRL is never published leaves a gap, which RFC 5280 allows.
        """
        response = self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"CRLNUMBER#{ca}"}},
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
            TableName=self._table, Key={"pk": {"S": f"IDEMPOTENCY#{key_hash}"}}, ConsistentRead=True
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
                Key={"pk": {"S": f"CERT#{serial_number}"}},
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
            Key={"pk": {"S": f"CERT#{serial_number}"}},
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
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._certificate_item(new),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": f"CERT#{old_serial_number}"}},
                        "UpdateExpression": update,
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": _item(values),
                    }
                },
            ]
        )

    def mark_acm_missing(self, serial_number: str, now: datetime) -> None:
        """ACM says the ARN no longer exists: stop managing it (leaves the AcmByExpiry index)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"CERT#{serial_number}"}},
            UpdateExpression=(
                "SET acm_status = :missing, acm_missing_since = :now REMOVE acm_managed, rotation_lease_until"
            ),
            ExpressionAttributeValues=_item({":missing": "missing", ":now": iso(now)}),
        )


def revoked_entries_from_stream(
    records: list[dict[str, Any]], ca: str | None = None, problems: list[UnreadableRecord] | None = None
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
