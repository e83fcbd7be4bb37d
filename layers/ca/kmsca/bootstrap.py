"""Bootstrap of the CA hierarchy: create the root and issuing CA certificates once, publish them.

Idempotent and conservative: an existing CA record is never replaced or deleted. Running it
again (stack update, retry, a second concurrent run) re-publishes what is missing and changes
nothing else. AWS calls on a first run: 1 BatchGetItem, 2 ``kms:GetPublicKey``, 2 ``kms:Sign``
(root self-signature, issuing CA certificate), 2 conditional PutItem, and a HeadObject plus
PutObject per artefact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from .ca import check_key_matches
from .certificates import (
    BACKDATE,
    ISSUING,
    ROOT,
    PublicationUrls,
    build_issuing_certificate,
    build_root_certificate,
    issuer_pointer_extensions,
    pointer_extensions_of,
)
from .errors import ConfigurationError
from .publish import CA_BUNDLE_KEY, ca_artefacts, publish
from .records import CaRecord, iso
from .settings import BootstrapSettings
from .signer import load_kms_private_key, signature_scheme
from .store import CaRecords
from .truststore import trust_store_problems

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class CaHierarchyConfig:
    """The CA hierarchy to create (custom-resource properties of ``CaHierarchy``).

    Attributes:
        root_common_name, issuing_common_name: commonName of each CA (1-64 characters).
        organization, organizational_unit: optional, shared by both CAs.
        country: optional two-letter code.
        root_lifetime_days, issuing_lifetime_days: validity, days; the issuing CA must end first.
    """

    root_common_name: str
    issuing_common_name: str
    organization: str
    organizational_unit: str
    country: str
    root_lifetime_days: int
    issuing_lifetime_days: int

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> CaHierarchyConfig:
        """Read custom-resource properties (CloudFormation passes numbers as strings).

        Raises:
            ConfigurationError: a property missing or invalid.
        """

        def text(name: str, required: bool = False) -> str:
            value = properties.get(name, "")
            if not isinstance(value, str) or (required and not value.strip()):
                raise ConfigurationError(f"custom resource property {name} must be a non-empty string", property=name)
            return value.strip()

        def days(name: str) -> int:
            value = str(properties.get(name, ""))
            if not value.isdigit() or int(value) < 1:
                raise ConfigurationError(
                    f"custom resource property {name}={value!r} is not a positive integer", property=name, value=value
                )
            return int(value)

        config = cls(
            root_common_name=text("RootCaCommonName", required=True),
            issuing_common_name=text("IssuingCaCommonName", required=True),
            organization=text("Organization"),
            organizational_unit=text("OrganizationalUnit"),
            country=text("Country"),
            root_lifetime_days=days("RootCaLifetimeDays"),
            issuing_lifetime_days=days("IssuingCaLifetimeDays"),
        )
        if config.issuing_lifetime_days >= config.root_lifetime_days:
            raise ConfigurationError(
                "IssuingCaLifetimeDays must be shorter than RootCaLifetimeDays",
                issuing_lifetime_days=config.issuing_lifetime_days,
                root_lifetime_days=config.root_lifetime_days,
            )
        return config

    def subject(self, common_name: str) -> x509.Name:
        attributes = []
        for oid, value in (
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.ORGANIZATION_NAME, self.organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit),
            (NameOID.COMMON_NAME, common_name),
        ):
            if value:
                try:
                    attributes.append(x509.NameAttribute(oid, value))
                except ValueError as exc:
                    raise ConfigurationError(f"CA subject: {exc}") from None
        return x509.Name(attributes)


def _reissue_if_pointers_changed(
    store: CaRecords,
    settings: BootstrapSettings,
    root: CaRecord,
    root_key: Any,
    root_scheme: Any,
    issuing: CaRecord,
    now: datetime,
    created: list[str],
) -> CaRecord:
    """Re-issue the issuing CA certificate when its CRL DP or AIA (e.g. the OCSP URL) differ from
    the settings: the **same key and subject** (so every certificate it issued still chains), the
    same notAfter, a new serial, one ``kms:Sign`` with the root key. The record is replaced with a
    conditional write on the old serial (a concurrent run re-reads the winner). Never a new key.
    """
    urls = PublicationUrls(settings.public_base_url, settings.ocsp_url) if settings.public_base_url else None
    if pointer_extensions_of(issuing.certificate) == issuer_pointer_extensions(ROOT, urls):
        return issuing
    old = issuing.certificate
    certificate = build_issuing_certificate(
        root_key,
        root_scheme,
        root.certificate,
        old.public_key(),
        old.subject,
        x509.random_serial_number(),
        now - BACKDATE,
        old.not_valid_after_utc,
        urls,
    )
    replaced = store.replace_ca(CaRecord(ISSUING, certificate, issuing.key_id, now), issuing.serial_number)
    if replaced.serial_number != issuing.serial_number:
        created.append(f"{ISSUING} (re-issued)")
    return replaced


@dataclass(frozen=True)
class BootstrapResult:
    """What bootstrap did.

    Attributes:
        root, issuing: the CA records in force.
        created: names of the CA records this run created (empty when all existed).
        published: object keys this run wrote (empty when all were up to date).
        bundle_uri: ``s3://bucket/ca-bundle.pem``.
        trust_store_problems: why CloudFront would refuse the bundle as a trust store (empty: ready).
    """

    root: CaRecord
    issuing: CaRecord
    created: tuple[str, ...]
    published: tuple[str, ...]
    bundle_uri: str
    trust_store_problems: tuple[str, ...] = ()


def bootstrap_ca(
    store: CaRecords,
    kms: KMSClient,
    s3: S3Client,
    settings: BootstrapSettings,
    config: CaHierarchyConfig,
    now: datetime,
) -> BootstrapResult:
    """Create the CA hierarchy if it does not exist, check it if it does, and publish it.

    Raises:
        CaNotReady: an existing CA record does not match its KMS key (nothing is replaced).
        UnsupportedCaKey: a KMS key cannot sign as a CA.
        ConfigurationError: the CA subject is invalid.
    """
    existing = store.get_cas([ROOT, ISSUING])
    created: list[str] = []

    root_key = load_kms_private_key(kms, settings.root_key_id)
    root_scheme = signature_scheme(root_key, settings.signing)
    root = existing.get(ROOT)
    if root is None:
        certificate = build_root_certificate(
            root_key,
            root_scheme,
            config.subject(config.root_common_name),
            x509.random_serial_number(),
            now - BACKDATE,
            now + timedelta(days=config.root_lifetime_days),
        )
        candidate = CaRecord(ROOT, certificate, settings.root_key_id, now)
        root = store.put_ca(candidate)
        if root is candidate:
            created.append(ROOT)
    check_key_matches(root, root_key)

    issuing_key = load_kms_private_key(kms, settings.issuing_key_id)
    issuing = existing.get(ISSUING)
    if issuing is None:
        not_after = now + timedelta(days=config.issuing_lifetime_days)
        if not_after > root.certificate.not_valid_after_utc:
            raise ConfigurationError(
                "the issuing CA would outlive the root CA; shorten IssuingCaLifetimeDays",
                issuing_not_after=iso(not_after),
                root_not_after=iso(root.certificate.not_valid_after_utc),
            )
        certificate = build_issuing_certificate(
            root_key,
            root_scheme,
            root.certificate,
            issuing_key.public_key(),
            config.subject(config.issuing_common_name),
            x509.random_serial_number(),
            now - BACKDATE,
            not_after,
            PublicationUrls(settings.public_base_url) if settings.public_base_url else None,
        )
        candidate = CaRecord(ISSUING, certificate, settings.issuing_key_id, now)
        issuing = store.put_ca(candidate)
        if issuing is candidate:
            created.append(ISSUING)
    check_key_matches(issuing, issuing_key)
    issuing = _reissue_if_pointers_changed(store, settings, root, root_key, root_scheme, issuing, now, created)

    artefacts = ca_artefacts(root.certificate, issuing.certificate)
    published = [artefact.key for artefact in artefacts if publish(s3, settings.public_bucket, artefact)]
    bundle = next(a.body for a in artefacts if a.key == CA_BUNDLE_KEY)
    return BootstrapResult(
        root=root,
        issuing=issuing,
        created=tuple(created),
        published=tuple(published),
        bundle_uri=f"s3://{settings.public_bucket}/{CA_BUNDLE_KEY}",
        trust_store_problems=tuple(trust_store_problems(bundle)),
    )
