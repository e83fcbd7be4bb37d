"""The whole store: every storage concern of the CA, for code that needs several of them."""

from __future__ import annotations

from typing import Protocol

from .acm_imports import AcmImports
from .acm_rotations import AcmRotations
from .ca_records import CaRecords
from .certificate_index import CertificateIndex
from .certificates import Certificates
from .crl_numbers import CrlNumbers
from .idempotency import IdempotencyRecords
from .renewals import RenewalLinks
from .revocations import Revocations


class CertificateStore(
    CaRecords,
    Certificates,
    Revocations,
    RenewalLinks,
    CrlNumbers,
    IdempotencyRecords,
    AcmImports,
    AcmRotations,
    CertificateIndex,
    Protocol,
):
    """What the CA needs from storage: the union of the protocols of one concern each. Code that
    needs one concern takes that protocol (e.g. :class:`~kmsca.store.crl_numbers.CrlNumbers`)."""
