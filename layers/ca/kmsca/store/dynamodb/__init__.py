"""The store on DynamoDB: one adapter per concern on the same table, and
:class:`DynamoDbCertificateStore`, all of them at once (what the handlers build).

Table layout: template.yaml ``CaTable`` (partition key ``pk``, no sort key); the keys are built and
parsed by :mod:`kmsca.table_keys` only. AWS errors are translated in these adapters and only here.
"""

from __future__ import annotations

from .acm_imports import DynamoDbAcmImports
from .acm_rotations import DynamoDbAcmRotations
from .ca_records import DynamoDbCaRecords
from .certificate_index import DynamoDbCertificateIndex
from .certificates import DynamoDbCertificates
from .crl_numbers import DynamoDbCrlNumbers
from .idempotency import DynamoDbIdempotency
from .renewals import DynamoDbRenewals
from .revocations import DynamoDbRevocations


class DynamoDbCertificateStore(
    DynamoDbCaRecords,
    DynamoDbAcmImports,
    DynamoDbRevocations,
    DynamoDbRenewals,
    DynamoDbCrlNumbers,
    DynamoDbIdempotency,
    DynamoDbAcmRotations,
    DynamoDbCertificateIndex,
):
    """:class:`~kmsca.store.CertificateStore` on one DynamoDB table.

    Args:
        client: boto3 DynamoDB client (injected; build it once per container).
        table_name: the table's name.
    """


__all__ = [
    "DynamoDbAcmImports",
    "DynamoDbAcmRotations",
    "DynamoDbCaRecords",
    "DynamoDbCertificateIndex",
    "DynamoDbCertificateStore",
    "DynamoDbCertificates",
    "DynamoDbCrlNumbers",
    "DynamoDbIdempotency",
    "DynamoDbRenewals",
    "DynamoDbRevocations",
]
