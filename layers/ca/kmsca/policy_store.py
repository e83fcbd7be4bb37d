"""The issuance policy document in the CA table: one item ``POLICY#issuance``.

Attributes of the item: ``document`` (S, the JSON text as written), ``revision`` (N, 1 for the
first document, +1 at each write), ``updated_at`` (S, ISO 8601 UTC), ``updated_by`` (S, the
writer's ARN). A write is conditional on the revision the writer read (optimistic locking), so two
administrators cannot overwrite each other's change unknowingly.

Calls: ``dynamodb:GetItem`` (read, strongly consistent), ``dynamodb:PutItem`` (write), both on
leading key ``POLICY#*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .aws_errors import translated
from .caller_policy import IssuancePolicyDocument
from .errors import InvalidIssuancePolicy, PolicyRevisionConflict
from .policy_document import parse_document
from .records import iso
from .table_keys import policy_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class StoredPolicy:
    """The stored document: ``text`` as written, ``document`` parsed, ``revision`` (1, 2, ...)."""

    text: str
    document: IssuancePolicyDocument
    revision: int
    updated_at: str | None = None
    updated_by: str | None = None


@translated("dynamodb")
class DynamoDbPolicyStore:
    """Read and write ``POLICY#issuance`` with an injected DynamoDB client."""

    def __init__(self, client: DynamoDBClient | Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self) -> StoredPolicy | None:
        """The stored policy, or None when none is stored.

        Raises:
            InvalidIssuancePolicy: an item exists but cannot be read or is not a valid document
                (fail closed: the caller must refuse every policy-governed request).
            AwsCallFailed: DynamoDB failed.
        """
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": policy_key()}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        try:
            text = item["document"]["S"]
            revision = int(item["revision"]["N"])
        except (KeyError, TypeError, ValueError):
            raise InvalidIssuancePolicy(
                "the stored issuance policy is unreadable (no document or revision); nothing is issued to "
                "function-URL callers until an administrator stores a valid one (utils/issuance-policy.py put)"
            ) from None
        try:
            document = parse_document(text)
        except InvalidIssuancePolicy as exc:
            raise InvalidIssuancePolicy(
                f"the stored issuance policy (revision {revision}) is invalid, so every caller is refused until "
                f"an administrator stores a valid one (utils/issuance-policy.py put): {exc.message}"
            ) from None
        return StoredPolicy(
            text, document, revision, item.get("updated_at", {}).get("S"), item.get("updated_by", {}).get("S")
        )

    def save(self, text: str, expected_revision: int | None, updated_by: str, now: datetime) -> int:
        """Validate ``text`` and store it as the next revision; the new revision number.

        Args:
            text: the document (JSON).
            expected_revision: the revision read before (None: no policy was stored).
            updated_by: the writer's ARN (recorded).
            now: the time of the write.

        Raises:
            InvalidIssuancePolicy: ``text`` is not a valid document (nothing written).
            PolicyRevisionConflict: the stored revision is not ``expected_revision``.
        """
        parse_document(text)
        revision = 1 if expected_revision is None else expected_revision + 1
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if expected_revision is None
            else {
                "ConditionExpression": "revision = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_revision)}},
            }
        )
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": policy_key()},
                    "document": {"S": text},
                    "revision": {"N": str(revision)},
                    "updated_at": {"S": iso(now)},
                    "updated_by": {"S": updated_by},
                },
                **condition,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise PolicyRevisionConflict(
                    f"the issuance policy changed since revision {expected_revision} was read; get it again, "
                    "merge your change and put it again"
                ) from None
            raise
        return revision
