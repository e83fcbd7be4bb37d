"""What the CA last left in a KeyValueStore: the ETag its last write produced and a digest of the
content it knew the store to hold then, kept in the table as item ``KVSSTATE#<store id>``.

A reconcile that reads the same ETag from ``DescribeKeyValueStore`` knows nobody wrote since, so
the store still holds that content and need not be listed (see :mod:`kmsca.kvs`).

The digest is order-independent (the sum of the SHA-256 of every ``key value`` pair, modulo
2**256), so a write of new keys updates it without knowing the other keys. A wrong belief can
only make the digests differ, which costs a full listing, never a missed key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .aws_errors import translated
from .records import iso, parse_iso
from .table_keys import kvs_state_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_MODULUS = 2**256


def pair_hash(key: str, value: str) -> int:
    """The digest contribution of one key and its value."""
    return int.from_bytes(hashlib.sha256(f"{key} {value}".encode()).digest(), "big")


def content_digest(items: Mapping[str, str]) -> int:
    """Order-independent digest of a store's content (key -> value)."""
    return sum(pair_hash(k, v) for k, v in items.items()) % _MODULUS


def add_to_digest(digest: int, items: Iterable[tuple[str, str]]) -> int:
    """``digest`` after keys that were absent are added."""
    return (digest + sum(pair_hash(k, v) for k, v in items)) % _MODULUS


@dataclass(frozen=True)
class KvsState:
    """``etag``: what the CA's last write returned; ``digest``/``count``: the content it left;
    ``as_of``: the time whose revoked, unexpired certificates that content mirrors; ``listed_at``:
    the last full listing (the safety net lists again after :data:`kmsca.kvs.FULL_LISTING_INTERVAL`)."""

    etag: str
    digest: int
    count: int
    as_of: datetime
    listed_at: datetime


@translated("dynamodb")
class DynamoDbKvsState:
    """The state item of one KeyValueStore in the CA table (``GetItem``/``PutItem``
    of ``KVSSTATE#<store id>`` only, or ``KVSSTATE#<target name>`` with ``state_id``)."""

    def __init__(self, client: DynamoDBClient, table_name: str, kvs_arn: str, state_id: str | None = None) -> None:
        self._client = client
        self._table = table_name
        self._key = {"pk": {"S": kvs_state_key(state_id or kvs_arn.rsplit("/", 1)[-1])}}

    def get(self) -> KvsState | None:
        """The state, or None when there is none or it cannot be read (a full listing follows)."""
        item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True).get("Item")
        if not item:
            return None
        try:
            return KvsState(
                etag=item["etag"]["S"],
                digest=int(item["digest"]["S"], 16),
                count=int(item["count"]["N"]),
                as_of=parse_iso(item["as_of"]["S"]),
                listed_at=parse_iso(item["listed_at"]["S"]),
            )
        except (KeyError, ValueError, TypeError):
            return None

    def mark_stale(self, error_code: str, at: datetime) -> None:
        """Record that a sync of this store failed: the item then has no ETag, so :meth:`get`
        returns None and the next reconcile lists the store in full (and repairs it). Keeps the
        error code and time for the operator (``failed_at``, ``error_code``)."""
        self._client.put_item(
            TableName=self._table,
            Item={**self._key, "failed_at": {"S": iso(at)}, "error_code": {"S": error_code[:128] or "unknown"}},
        )

    def put(self, state: KvsState, replaces_etag: str | None = None) -> bool:
        """Store ``state``; with ``replaces_etag``, only if the stored state still has that ETag
        (False if not: a concurrent writer moved on, and the next reconcile will list)."""
        kwargs: dict[str, Any] = {}
        if replaces_etag is not None:
            kwargs = {
                "ConditionExpression": "etag = :previous",
                "ExpressionAttributeValues": {":previous": {"S": replaces_etag}},
            }
        item = {
            **self._key,
            "etag": {"S": state.etag},
            "digest": {"S": format(state.digest, "064x")},
            "count": {"N": str(state.count)},
            "as_of": {"S": iso(state.as_of)},
            "listed_at": {"S": iso(state.listed_at)},
        }
        try:
            self._client.put_item(TableName=self._table, Item=item, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
