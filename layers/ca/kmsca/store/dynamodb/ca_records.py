"""CA records in DynamoDB (``CA#<name>``): :class:`~kmsca.store.ca_records.CaRecords`."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from cryptography import x509

from ...records import CaRecord, iso, parse_iso, pem
from ...table_keys import ca_key
from .table import DynamoDbTable, _condition_failed, _item, _plain


class DynamoDbCaRecords(DynamoDbTable):
    """:class:`~kmsca.store.ca_records.CaRecords` on the table: one item per CA."""

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
