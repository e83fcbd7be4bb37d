"""Renewal links in DynamoDB (``RENEWAL#<predecessor>``): :class:`~kmsca.store.renewals.RenewalLinks`."""

from __future__ import annotations

from datetime import datetime

from ...records import iso
from ...table_keys import predecessor_of, renewal_key
from .table import LIST_INDEX, DynamoDbTable, _plain, _string

#: Partition of the ``ByCaExpiry`` index that holds renewals whose predecessor is to be revoked
#: (``superseded``) at a time: ``RENEWAL#<predecessor>`` items carry ``ca`` = this and
#: ``not_after`` = the time the predecessor is due for revocation, until the sweep revokes it.
SUPERSEDE_DUE = "#supersede"


class DynamoDbRenewals(DynamoDbTable):
    """:class:`~kmsca.store.renewals.RenewalLinks` on the table (the links are written by
    :meth:`~kmsca.store.dynamodb.certificates.DynamoDbCertificates.put_certificate`)."""

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
