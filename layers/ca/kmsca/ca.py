"""Loading CAs: a CA record with its KMS key, checked to belong together (the one loader, with the
one translation of an unusable key into :class:`~kmsca.errors.CaNotReady`), and the issuing CA as
the issue function sees it (its certificate, the root's, and its KMS key).

Loaded once per warm container (one BatchGetItem and one ``kms:GetPublicKey`` per key), then reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from .certificates import ISSUING, ROOT, PublicationUrls
from .errors import CaNotReady
from .records import CaRecord, pem
from .settings import SigningSettings
from .signer import CaPrivateKey, SignatureScheme, UnsupportedCaKey, load_kms_private_key, signature_scheme
from .store import CaRecords

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_key_matches(record: CaRecord, private_key: CaPrivateKey) -> None:
    """Refuse to sign for a CA certificate whose public key is not the KMS key's.

    Raises:
        CaNotReady: they differ (the key was replaced, or the record belongs to another key).
    """
    if _spki(record.certificate.public_key()) != _spki(private_key.public_key()):
        raise CaNotReady(
            f"the {record.name} CA certificate {record.serial_number} does not match its KMS key; "
            "refusing to sign",
            ca=record.name,
            serial_number=record.serial_number,
        )


@dataclass(frozen=True)
class CaSigner:
    """A CA record with its KMS-backed key and signature scheme."""

    record: CaRecord
    private_key: CaPrivateKey
    scheme: SignatureScheme


def load_signer(record: CaRecord, kms: KMSClient, key_id: str, signing: SigningSettings) -> CaSigner:
    """Load a CA's KMS key (one ``kms:GetPublicKey``) and check that ``record`` is its certificate.

    Raises:
        CaNotReady: the key is unusable (not a signing key, or a key spec a CA cannot sign with),
            or the CA certificate does not match it.
    """
    try:
        private_key = load_kms_private_key(kms, key_id)
    except UnsupportedCaKey as exc:
        raise CaNotReady(str(exc), **exc.details) from exc
    check_key_matches(record, private_key)
    return CaSigner(record, private_key, signature_scheme(private_key, signing))


def load_ca_signers(
    store: CaRecords, kms: KMSClient, key_ids: dict[str, str], signing: SigningSettings
) -> dict[str, CaSigner]:
    """Load CA records (one BatchGetItem) and their KMS keys (one GetPublicKey each).

    Args:
        key_ids: CA name -> KMS key id or ARN.

    Raises:
        CaNotReady: a CA record is missing, its key is unusable, or the record does not match it.
    """
    records = store.get_cas(list(key_ids))
    signers = {}
    for name, key_id in key_ids.items():
        if name not in records:
            raise CaNotReady(f"the {name} CA has not been created yet; deploy the stack (bootstrap) first", ca=name)
        signers[name] = load_signer(records[name], kms, key_id, signing)
    return signers


@dataclass(frozen=True)
class IssuingCa:
    """Everything needed to sign end-entity certificates.

    Attributes:
        issuing: the issuing CA record.
        root: the root CA record.
        private_key: the issuing CA's KMS-backed key.
        scheme: its signature scheme.
        urls: CRL DP / AIA locations, or None when no public base URL is configured.
    """

    issuing: CaRecord
    root: CaRecord
    private_key: CaPrivateKey
    scheme: SignatureScheme
    urls: PublicationUrls | None

    @cached_property
    def chain_pem(self) -> str:
        """Issuing then root certificate, PEM (the ``certificate_chain`` of a response); computed
        once per container."""
        return pem(self.issuing.certificate) + pem(self.root.certificate)


def load_issuing_ca(
    store: CaRecords,
    kms: KMSClient,
    key_id: str,
    signing: SigningSettings,
    public_base_url: str | None,
    ocsp_url: str | None = None,
) -> IssuingCa:
    """Read the CA records and the issuing key's public key; check they belong together.

    Raises:
        CaNotReady: the hierarchy is not bootstrapped, the key is unusable, or the issuing CA
            certificate does not match the KMS key.
    """
    records = store.get_cas([ROOT, ISSUING])
    if ROOT not in records or ISSUING not in records:
        raise CaNotReady(
            "the CA hierarchy has not been created yet; deploy the stack (bootstrap) first",
            missing=[name for name in (ROOT, ISSUING) if name not in records],
        )
    signer = load_signer(records[ISSUING], kms, key_id, signing)
    return IssuingCa(
        issuing=records[ISSUING],
        root=records[ROOT],
        private_key=signer.private_key,
        scheme=signer.scheme,
        urls=PublicationUrls(public_base_url, ocsp_url) if public_base_url else None,
    )
