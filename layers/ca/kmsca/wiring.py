"""The one place that wires the CA from its settings and its clients/stores.

- :func:`build_issuer`: the issuing CA (records + KMS key, checked to belong together) and the
  :class:`~kmsca.issuance.Issuer` on it (issue and ACM rotation functions).
- :func:`crl_signers`: the root and issuing CA signers (CRL publication).
- :func:`issuing_signer`: the issuing CA signer alone (the OCSP responder, which never holds the
  root key; tests of the CRL).

Each reads the CA records once (one ``dynamodb:BatchGetItem``) and each KMS key's public key once
(one ``kms:GetPublicKey`` per key); callers keep the result for the warm container. The loading and
its one error translation are :mod:`kmsca.ca`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .ca import CaSigner, load_ca_signers, load_issuing_ca
from .certificates import ISSUING, ROOT
from .issuance import IssuancePolicy, Issuer
from .settings import CrlSettings, IssueSettings, SigningSettings

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

    from .acm import AcmImporter
    from .acm_targets import AcmTargets
    from .store import CaRecords, CertificateStore


def issuance_policy(settings: IssueSettings) -> IssuancePolicy:
    """The lifetime limits of ``settings`` (``MAX_LIFETIME_DAYS``, ``DEFAULT_LIFETIME_DAYS``; days)."""
    return IssuancePolicy(settings.max_lifetime_days, settings.default_lifetime_days)


def build_issuer(
    settings: IssueSettings,
    store: CertificateStore,
    kms: KMSClient,
    acm: AcmTargets | AcmImporter | None = None,
) -> Issuer:
    """The issuer of end-entity certificates.

    Args:
        settings: the issue settings (table, issuing key id, lifetimes, URLs, signature scheme).
        store: the certificate inventory (also holds the CA records).
        kms: boto3 KMS client (``kms:GetPublicKey`` now, ``kms:Sign`` per certificate).
        acm: ACM us-east-1 of each edge target, for profiles whose key the CA generates
            (``cloudfront-origin``); None where the function has no ACM access.

    Raises:
        CaNotReady: the hierarchy is not bootstrapped, the issuing key is unusable, or the issuing
            CA certificate does not match it.
        AwsCallFailed: DynamoDB or KMS failed (an adapter's translation).
    """
    ca = load_issuing_ca(
        store, kms, settings.issuing_key_id, settings.signing, settings.public_base_url, settings.ocsp_url
    )
    return Issuer(ca, store, issuance_policy(settings), acm)


def crl_signers(settings: CrlSettings, store: CaRecords, kms: KMSClient) -> dict[str, CaSigner]:
    """The root and the issuing CA signers, ``{"root": CaSigner, "issuing": CaSigner}``.

    Raises:
        CaNotReady: a CA record is missing, its key is unusable, or the record does not match it.
        AwsCallFailed: DynamoDB or KMS failed.
    """
    key_ids = {ROOT: settings.root_key_id, ISSUING: settings.issuing_key_id}
    return load_ca_signers(store, kms, key_ids, settings.signing)


class IssuingKeySettings(Protocol):
    """Settings that name the issuing CA's KMS key: :class:`~kmsca.settings.OcspSettings`,
    :class:`~kmsca.settings.CrlSettings`, :class:`~kmsca.settings.IssueSettings`."""

    @property
    def issuing_key_id(self) -> str: ...

    @property
    def signing(self) -> SigningSettings: ...


def issuing_signer(settings: IssuingKeySettings, store: CaRecords, kms: KMSClient) -> CaSigner:
    """The issuing CA signer (for the OCSP responder: it certifies the delegated responder).

    Raises:
        CaNotReady: the issuing CA record is missing, its key is unusable, or they do not match.
        AwsCallFailed: DynamoDB or KMS failed.
    """
    return load_ca_signers(store, kms, {ISSUING: settings.issuing_key_id}, settings.signing)[ISSUING]
