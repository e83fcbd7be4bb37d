"""CRL numbers in DynamoDB (``CRLNUMBER#<ca>``): :class:`~kmsca.store.crl_numbers.CrlNumbers`."""

from __future__ import annotations

from ...table_keys import crl_number_key
from .table import DynamoDbTable


class DynamoDbCrlNumbers(DynamoDbTable):
    """:class:`~kmsca.store.crl_numbers.CrlNumbers` on the table: an atomic ADD per number."""

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
