"""The CA's storage: one small protocol per concern, and the DynamoDB adapters behind them.

Protocols (what the CA code depends on), one module each:

- :mod:`.ca_records` (:class:`CaRecords`): the root and issuing CA records.
- :mod:`.certificates` (:class:`Certificates`, :class:`Renewal`): issued certificates.
- :mod:`.revocations` (:class:`Revocations`): revoking, and the revoked certificates of a CA.
- :mod:`.renewals` (:class:`RenewalLinks`): which certificate renewed which; supersessions due.
- :mod:`.crl_numbers` (:class:`CrlNumbers`): CRL number counters.
- :mod:`.idempotency` (:class:`IdempotencyRecords`): the first response for an idempotency key.
- :mod:`.acm_imports` (:class:`AcmImports`): certificates recorded before their ACM import.
- :mod:`.acm_rotations` (:class:`AcmRotations`): ACM ARNs due, rotation leases, the rotation write.
- :mod:`.certificate_index` (:class:`CertificateIndex`): a CA's certificates by notAfter (inventory, expiry).
- :mod:`.notices` (:class:`NoticeMarkers`): the expiry notices sent (once per threshold).
- :mod:`.certificate_store` (:class:`CertificateStore`): all of them.

Adapters: :mod:`.dynamodb` (one module per concern; :class:`DynamoDbCertificateStore` is all of
them); :mod:`.stream` reads revocations from the table's stream. tests/support/memory_store.py
implements every protocol in memory for unit tests.

Table layout (template.yaml ``CaTable``; partition key ``pk``, no sort key; the keys are built and
parsed by :mod:`kmsca.table_keys` only):

- ``CERT#<serial>``: one item per issued certificate (attributes of
  :class:`~kmsca.records.CertificateRecord`). A revoked certificate also carries ``revoked_ca``,
  which puts it in the sparse index ``RevokedByCa`` (partition ``revoked_ca``, sort ``not_after``,
  projecting only the compact ``crl_entry``), so one CA's revoked, unexpired certificates are a
  Query, never a Scan. The current certificate behind an ACM ARN carries ``acm_managed``, which
  puts it in the sparse index ``AcmByExpiry`` (partition ``acm_managed``, sort ``not_after``).
  A certificate recorded *before* its ACM import (``put_pending_import``)
  carries ``acm_managed = pending`` until the import is recorded, so the rotation run finds every
  unfinished import with a Query of the same index (``acm_managed = pending``) and repairs it.
- ``CA#<name>``: the root and issuing CA certificates and their KMS key ARNs.
- ``IDEMPOTENCY#<sha256 of key>``: the first response for an idempotency key, with a TTL
  (``expires_at``, epoch seconds). DynamoDB's TTL deletion can lag by days, so a record whose
  ``expires_at`` has passed is treated as absent and may be overwritten (conditional write).

AWS errors are translated here and only here.
"""

from __future__ import annotations

from ..errors import IdempotencyKeyInUse, PendingImportGone, WriteConflict
from .acm_imports import IMPORT_FAILED_REASON, AcmImports, PendingImport
from .acm_rotations import AcmRotations
from .ca_records import CaRecords
from .certificate_index import CertificateIndex, IndexedCertificate, IndexPage, IndexPosition
from .certificate_store import CertificateStore
from .certificates import Certificates, Renewal
from .crl_numbers import CrlNumbers
from .dynamodb import DynamoDbCertificateStore
from .dynamodb.renewals import SUPERSEDE_DUE
from .dynamodb.table import ACM_ACTIVE, ACM_PENDING, IMPORT_FAILED, LIST_INDEX, PENDING_IMPORT, _plain
from .idempotency import IdempotencyRecords
from .renewals import RenewalLinks
from .revocations import Revocations
from .stream import revoked_entries_from_stream

__all__ = [
    "ACM_ACTIVE",
    "ACM_PENDING",
    "IMPORT_FAILED",
    "IMPORT_FAILED_REASON",
    "LIST_INDEX",
    "PENDING_IMPORT",
    "SUPERSEDE_DUE",
    "AcmImports",
    "AcmRotations",
    "CaRecords",
    "CertificateIndex",
    "CertificateStore",
    "Certificates",
    "CrlNumbers",
    "DynamoDbCertificateStore",
    "IdempotencyKeyInUse",
    "IdempotencyRecords",
    "IndexPage",
    "IndexPosition",
    "IndexedCertificate",
    "PendingImport",
    "PendingImportGone",
    "Renewal",
    "RenewalLinks",
    "Revocations",
    "WriteConflict",
    "_plain",
    "revoked_entries_from_stream",
]
