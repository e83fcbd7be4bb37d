"""Every edge target's CloudFront trust store follows the CA bundle.

CloudFront reads a trust store's bundle only at ``CreateTrustStore`` / ``UpdateTrustStore``
(:mod:`kmsca.truststore`), so when the bootstrap publishes the bundle it points each registered
target's trust store (``trust_store_id``) at it again, through the target's edge role
(``cloudfront:GetTrustStore`` + ``cloudfront:UpdateTrustStore``; CloudFront reads the bundle from
the CA account's public bucket with the edge role's permissions, so the bucket's policy and the edge
role must allow ``s3:GetObject`` on ``ca-bundle.pem``).

One target's failure never stops the others nor the deploy: it is reported (name -> AWS error code)
and the next bootstrap run (any stack update) tries again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .edge_session import EdgeSessions
from .errors import AwsCallFailed, CaError
from .targets import DynamoDbTargetStore
from .truststore import update_trust_store

CLOUDFRONT_REGION = "us-east-1"  # the CloudFront control plane's region


@dataclass
class TrustStoreReport:
    """Targets whose trust store was updated, and those that failed (name -> error code)."""

    updated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def update_edge_trust_stores(
    targets: DynamoDbTargetStore,
    sessions: EdgeSessions,
    bucket: str,
    key: str,
    region: str,
    *,
    use_ocsp: bool | None = None,
) -> TrustStoreReport:
    """``UpdateTrustStore`` of every registered target that has a trust store, through its role.

    Args:
        bucket, key, region: where the CA bundle is (the CA account's public bucket).
        use_ocsp: ``UseClientCertificateOCSPEndpoint`` for every trust store (None: unchanged).
    """
    report = TrustStoreReport()
    for target in targets.list_targets():
        if not target.trust_store_id:
            continue
        try:
            cloudfront = sessions.client(target, "cloudfront", CLOUDFRONT_REGION)
            update_trust_store(cloudfront, target.trust_store_id, bucket, key, region, use_ocsp=use_ocsp)
        except (CaError, AwsCallFailed) as exc:
            report.failed[target.name] = exc.code if isinstance(exc, CaError) else exc.error_code
            continue
        report.updated.append(target.name)
    return report
