"""Idempotency records in DynamoDB (``IDEMPOTENCY#<sha256>``, TTL ``expires_at``):
:class:`~kmsca.store.idempotency.IdempotencyRecords`.

DynamoDB's TTL deletion can lag by days, so a record whose ``expires_at`` has passed is treated as
absent and may be overwritten (conditional write).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ...records import IdempotencyRecord
from ...table_keys import idempotency_key
from .table import DynamoDbTable, _plain


class DynamoDbIdempotency(DynamoDbTable):
    """:class:`~kmsca.store.idempotency.IdempotencyRecords` on the table (written by the certificate
    transactions, :mod:`kmsca.store.dynamodb.certificates`)."""

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
