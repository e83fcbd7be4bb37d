"""Configuration: environment variables set by template.yaml, read once at cold start.

A missing or malformed required setting raises :class:`ConfigurationError` naming the variable,
so a misconfigured function fails at its first invocation instead of issuing anything.
There are no silent defaults for resource names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigurationError

RSA_PADDINGS = ("PKCS1_V1_5", "PSS")
RSA_HASHES = ("SHA_256", "SHA_384", "SHA_512")
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-])?$")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"required environment variable {name} is not set", setting=name)
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip() or default
    if value not in choices:
        raise ConfigurationError(
            f"{name}={value!r} is not one of {', '.join(choices)}", setting=name, value=value, allowed=list(choices)
        )
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        if default is None:
            raise ConfigurationError(f"required environment variable {name} is not set", setting=name)
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"{name}={raw!r} is not a positive integer", setting=name, value=raw)
    return int(raw)


def _base_url(env: Mapping[str, str], name: str = "PUBLIC_BASE_URL") -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    if not _URL.match(value):
        raise ConfigurationError(
            f"{name}={value!r} is not an http(s) URL without a trailing slash", setting=name, value=value
        )
    return value


@dataclass(frozen=True)
class SigningSettings:
    """How CA keys sign when they are RSA (EC and ML-DSA keys have one fixed scheme).

    Attributes:
        rsa_padding: ``PKCS1_V1_5`` or ``PSS`` (salt length = digest length, as KMS does).
        rsa_hash: ``SHA_256``, ``SHA_384`` or ``SHA_512``.
    """

    rsa_padding: str = "PKCS1_V1_5"
    rsa_hash: str = "SHA_256"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SigningSettings:
        env = os.environ if env is None else env
        return cls(
            rsa_padding=_choice(env, "CA_RSA_SIGNATURE_PADDING", RSA_PADDINGS, "PKCS1_V1_5"),
            rsa_hash=_choice(env, "CA_RSA_SIGNATURE_HASH", RSA_HASHES, "SHA_256"),
        )


@dataclass(frozen=True)
class IssueSettings:
    """Settings of the issue function.

    Attributes:
        table_name: DynamoDB inventory table (``CA_TABLE_NAME``).
        issuing_key_id: KMS key id or ARN of the issuing CA (``ISSUING_CA_KEY_ID``).
        max_lifetime_days: longest end-entity lifetime, days (``MAX_LIFETIME_DAYS``).
        default_lifetime_days: lifetime when the request names none, days (``DEFAULT_LIFETIME_DAYS``).
        public_base_url: base URL of the public bucket for CRL DP and AIA, or None (``PUBLIC_BASE_URL``).
        signing: RSA signature scheme of the CA key.
        ocsp_url: the OCSP responder for AIA id-ad-ocsp, or None (``OCSP_URL``).
    """

    table_name: str
    issuing_key_id: str
    max_lifetime_days: int
    default_lifetime_days: int
    public_base_url: str | None
    signing: SigningSettings
    ocsp_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IssueSettings:
        env = os.environ if env is None else env
        settings = cls(
            table_name=_required(env, "CA_TABLE_NAME"),
            issuing_key_id=_required(env, "ISSUING_CA_KEY_ID"),
            max_lifetime_days=_positive_int(env, "MAX_LIFETIME_DAYS"),
            default_lifetime_days=_positive_int(env, "DEFAULT_LIFETIME_DAYS", 90),
            public_base_url=_base_url(env),
            signing=SigningSettings.from_env(env),
            ocsp_url=_base_url(env, "OCSP_URL"),
        )
        if settings.default_lifetime_days > settings.max_lifetime_days:
            raise ConfigurationError(
                f"DEFAULT_LIFETIME_DAYS={settings.default_lifetime_days} is above "
                f"MAX_LIFETIME_DAYS={settings.max_lifetime_days}",
                setting="DEFAULT_LIFETIME_DAYS",
                value=settings.default_lifetime_days,
                max_lifetime_days=settings.max_lifetime_days,
            )
        return settings


@dataclass(frozen=True)
class BootstrapSettings:
    """Settings of the bootstrap custom resource.

    Attributes:
        table_name: DynamoDB table holding the CA records (``CA_TABLE_NAME``).
        public_bucket: S3 bucket for CA certificates and the CA bundle (``PUBLIC_BUCKET_NAME``).
        root_key_id: KMS key id or ARN of the root CA (``ROOT_CA_KEY_ID``).
        issuing_key_id: KMS key id or ARN of the issuing CA (``ISSUING_CA_KEY_ID``).
        public_base_url: base URL for the issuing CA's CRL DP and AIA, or None.
        signing: RSA signature scheme of the CA keys.
        trust_store_id: CloudFront trust store to point at the bundle, or None (``TRUST_STORE_ID``).
        region: region of the public bucket (``AWS_REGION``, set by Lambda).
        ocsp_url: the OCSP responder for the issuing CA certificate's AIA, or None (``OCSP_URL``).
        trust_store_ocsp: set the trust store's ``UseClientCertificateOCSPEndpoint`` to this
            (``TRUST_STORE_OCSP``, ``true`` or ``false``; the template derives it from
            ``TrustStoreOcsp`` and ``EnableOcsp``).
    """

    table_name: str
    public_bucket: str
    root_key_id: str
    issuing_key_id: str
    public_base_url: str | None
    signing: SigningSettings
    trust_store_id: str | None = None
    region: str = "us-east-1"
    ocsp_url: str | None = None
    trust_store_ocsp: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BootstrapSettings:
        env = os.environ if env is None else env
        return cls(
            table_name=_required(env, "CA_TABLE_NAME"),
            public_bucket=_required(env, "PUBLIC_BUCKET_NAME"),
            root_key_id=_required(env, "ROOT_CA_KEY_ID"),
            issuing_key_id=_required(env, "ISSUING_CA_KEY_ID"),
            public_base_url=_base_url(env),
            signing=SigningSettings.from_env(env),
            trust_store_id=env.get("TRUST_STORE_ID", "").strip() or None,
            region=_required(env, "AWS_REGION"),
            ocsp_url=_base_url(env, "OCSP_URL"),
            trust_store_ocsp=_choice(env, "TRUST_STORE_OCSP", ("true", "false"), "false") == "true",
        )


@dataclass(frozen=True)
class CrlSettings:
    """Settings of the CRL publication function.

    Attributes:
        table_name: DynamoDB table (``CA_TABLE_NAME``).
        public_bucket: bucket for ``<ca>.crl`` and ``<ca>.crl.pem`` (``PUBLIC_BUCKET_NAME``).
        internal_bucket: bucket for the CRL archive (``INTERNAL_BUCKET_NAME``).
        root_key_id, issuing_key_id: KMS keys (``ROOT_CA_KEY_ID``, ``ISSUING_CA_KEY_ID``).
        crl_validity_hours: nextUpdate - thisUpdate, hours (``CRL_VALIDITY_HOURS``, default 24).
        signing: RSA signature scheme of the CA keys.
        event_source: ``source`` of the issued/revoked EventBridge events (``EVENT_SOURCE``).
    """

    table_name: str
    public_bucket: str
    internal_bucket: str
    root_key_id: str
    issuing_key_id: str
    crl_validity_hours: int
    signing: SigningSettings
    event_source: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CrlSettings:
        env = os.environ if env is None else env
        return cls(
            table_name=_required(env, "CA_TABLE_NAME"),
            public_bucket=_required(env, "PUBLIC_BUCKET_NAME"),
            internal_bucket=_required(env, "INTERNAL_BUCKET_NAME"),
            root_key_id=_required(env, "ROOT_CA_KEY_ID"),
            issuing_key_id=_required(env, "ISSUING_CA_KEY_ID"),
            crl_validity_hours=_positive_int(env, "CRL_VALIDITY_HOURS", 24),
            signing=SigningSettings.from_env(env),
            event_source=_required(env, "EVENT_SOURCE"),
        )


@dataclass(frozen=True)
class RevokeSettings:
    """Settings of the revoke function: the table (``CA_TABLE_NAME``)."""

    table_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RevokeSettings:
        env = os.environ if env is None else env
        return cls(table_name=_required(env, "CA_TABLE_NAME"))


@dataclass(frozen=True)
class RotationSettings:
    """Settings of the ACM rotation function.

    Attributes:
        issue: what issuing needs (the rotation signs new certificates).
        topic_arn: SNS topic for failures (``NOTIFICATION_TOPIC_ARN``).
        window_days: rotate certificates ending within this many days (``ACM_ROTATION_WINDOW_DAYS``, default 30).
        event_source: ``source`` of the rotated/rotation-failed EventBridge events (``EVENT_SOURCE``).
    """

    issue: IssueSettings
    topic_arn: str
    window_days: int
    event_source: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RotationSettings:
        env = os.environ if env is None else env
        return cls(
            issue=IssueSettings.from_env(env),
            topic_arn=_required(env, "NOTIFICATION_TOPIC_ARN"),
            window_days=_positive_int(env, "ACM_ROTATION_WINDOW_DAYS", 30),
            event_source=_required(env, "EVENT_SOURCE"),
        )


@dataclass(frozen=True)
class KvsSettings:
    """Settings of the KeyValueStore sync function.

    Attributes:
        table_name: DynamoDB table (``CA_TABLE_NAME``).
        kvs_arn: the CloudFront KeyValueStore (``KVS_ARN``).
        topic_arn: SNS topic for capacity alarms (``NOTIFICATION_TOPIC_ARN``).
    """

    table_name: str
    kvs_arn: str
    topic_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KvsSettings:
        env = os.environ if env is None else env
        return cls(
            table_name=_required(env, "CA_TABLE_NAME"),
            kvs_arn=_required(env, "KVS_ARN"),
            topic_arn=_required(env, "NOTIFICATION_TOPIC_ARN"),
        )


@dataclass(frozen=True)
class OcspSettings:
    """Settings of the OCSP responder function.

    Attributes:
        table_name: DynamoDB table (``CA_TABLE_NAME``).
        public_bucket: bucket of the root-signed responses about the issuing CA (``PUBLIC_BUCKET_NAME``).
        issuing_key_id: KMS key of the issuing CA, which certifies the delegated responder
            (``ISSUING_CA_KEY_ID``); the responder never gets the root key.
        validity_minutes: nextUpdate - thisUpdate of each response, minutes (``OCSP_VALIDITY_MINUTES``,
            default 60, at most 360 so a response never outlives its responder certificate).
        signing: RSA signature scheme of the issuing key.
    """

    table_name: str
    public_bucket: str
    issuing_key_id: str
    validity_minutes: int
    signing: SigningSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OcspSettings:
        env = os.environ if env is None else env
        validity = _positive_int(env, "OCSP_VALIDITY_MINUTES", 60)
        if validity > 360:
            raise ConfigurationError(
                f"OCSP_VALIDITY_MINUTES={validity} is above 360", setting="OCSP_VALIDITY_MINUTES", value=validity
            )
        return cls(
            table_name=_required(env, "CA_TABLE_NAME"),
            public_bucket=_required(env, "PUBLIC_BUCKET_NAME"),
            issuing_key_id=_required(env, "ISSUING_CA_KEY_ID"),
            validity_minutes=validity,
            signing=SigningSettings.from_env(env),
        )


def _days_list(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    parts = [p.strip() for p in raw.split(",")]
    if not all(p.isdigit() and 1 <= int(p) <= 3650 for p in parts) or len(set(parts)) != len(parts):
        raise ConfigurationError(
            f"{name}={raw!r} is not a comma-separated list of distinct days, 1-3650", setting=name, value=raw
        )
    return tuple(sorted((int(p) for p in parts), reverse=True))


@dataclass(frozen=True)
class ExpirySettings:
    """Settings of the expiry job.

    Attributes:
        table_name: DynamoDB table (``CA_TABLE_NAME``).
        topic_arn: SNS topic of the digest (``NOTIFICATION_TOPIC_ARN``).
        event_source: ``source`` of its EventBridge events (``EVENT_SOURCE``).
        thresholds: end-entity notice thresholds, days (``EXPIRY_THRESHOLDS_DAYS``, default 30,14,7,3,1).
        ca_thresholds: CA certificate thresholds, days (``CA_EXPIRY_THRESHOLDS_DAYS``, default 365,180,90,30).
    """

    table_name: str
    topic_arn: str
    event_source: str
    thresholds: tuple[int, ...]
    ca_thresholds: tuple[int, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExpirySettings:
        env = os.environ if env is None else env
        return cls(
            table_name=_required(env, "CA_TABLE_NAME"),
            topic_arn=_required(env, "NOTIFICATION_TOPIC_ARN"),
            event_source=_required(env, "EVENT_SOURCE"),
            thresholds=_days_list(env, "EXPIRY_THRESHOLDS_DAYS", (30, 14, 7, 3, 1)),
            ca_thresholds=_days_list(env, "CA_EXPIRY_THRESHOLDS_DAYS", (365, 180, 90, 30)),
        )
