"""What every DynamoDB adapter of the store shares: the client and table, attribute encoding, and
the translation of DynamoDB's refusals (AWS errors are translated in the adapters and only there).

Attribute values the adapters write (the keys themselves are :mod:`kmsca.table_keys`' only):
``acm_managed`` is :data:`ACM_ACTIVE` for the current certificate behind an ACM ARN and
:data:`ACM_PENDING` for one recorded before its import; ``acm_state`` is :data:`PENDING_IMPORT`
or :data:`IMPORT_FAILED`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from ...aws_errors import translated

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The listing index (template.yaml): partition ``ca``, sort ``not_after``.
LIST_INDEX = "ByCaExpiry"
ACM_ACTIVE = "active"
ACM_PENDING = "pending"
PENDING_IMPORT = "pending_import"
IMPORT_FAILED = "import_failed"
#: Errors after which a write may or may not have been applied (the reply was lost).
_AMBIGUOUS_CODES = {"InternalServerError", "ServiceUnavailable", "RequestTimeout", "ThrottlingException"}
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _item(values: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values of ``values`` (None values are left out)."""
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """Python values of a raw DynamoDB item."""
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _string(item: dict[str, Any], name: str) -> str:
    """A string attribute of a raw item, or "" when it is missing or of another type."""
    value = item.get(name, {})
    return value.get("S", "") if isinstance(value, dict) and isinstance(value.get("S"), str) else ""


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _ambiguous(exc: Exception) -> bool:
    """True when a write may have been applied although the call failed (lost reply, timeout)."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") in _AMBIGUOUS_CODES
    return isinstance(exc, BotoCoreError)


@translated("dynamodb")
class DynamoDbTable:
    """The CA table (template.yaml ``CaTable``; partition key ``pk``, no sort key).

    Every public method of a subclass raises the store's own errors for the refusals it expects and
    :class:`~kmsca.errors.AwsCallFailed` for any other DynamoDB failure, never a botocore exception
    (:func:`kmsca.aws_errors.translated`, which applies to every subclass).

    Args:
        client: boto3 DynamoDB client (injected; build it once per container).
        table_name: the table's name.
    """


    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
