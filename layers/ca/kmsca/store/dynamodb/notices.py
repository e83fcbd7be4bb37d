"""Expiry notice markers in DynamoDB (``NOTICE#…``, TTL ``expires_at``):
:class:`~kmsca.store.notices.NoticeMarkers`."""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from .table import DynamoDbTable


class DynamoDbNoticeMarkers(DynamoDbTable):
    """:class:`~kmsca.store.notices.NoticeMarkers` on the table: a conditional PutItem claims, a
    DeleteItem releases."""

    def claim_notice(self, key: str, expires_at: datetime) -> bool:
        """One conditional PutItem (``attribute_not_exists(pk)``).

        Raises:
            botocore.exceptions.ClientError: DynamoDB failed otherwise than by the condition.
        """
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": key},
                    "record_type": {"S": "notice"},
                    "expires_at": {"N": str(int(expires_at.timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def release_notice(self, key: str) -> None:
        """One DeleteItem."""
        self._client.delete_item(TableName=self._table, Key={"pk": {"S": key}})
