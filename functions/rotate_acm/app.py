"""ACM rotation function (daily schedule): re-issue CloudFront origin client certificates that
expire soon and re-import them into the same ACM ARN (see :mod:`kmsca.rotation`)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.acm import ACM_REGION, AcmImporter
from kmsca.acm_targets import AcmTargets
from kmsca.ca import load_issuing_ca
from kmsca.edge_session import EdgeSessions
from kmsca.issuance import IssuancePolicy, Issuer
from kmsca.notify import Notifier
from kmsca.rotation import OriginCertificateRotation
from kmsca.settings import RotationSettings
from kmsca.store import DynamoDbCertificateStore
from kmsca.targets import DynamoDbTargetStore

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=("botocore",))  # not patch_all: it imports every library X-Ray knows

SETTINGS = RotationSettings.from_env()
kms = boto3.client("kms")
dynamodb = boto3.client("dynamodb")
store = DynamoDbCertificateStore(dynamodb, SETTINGS.issue.table_name)
# Each certificate is re-imported into the ACM us-east-1 of the edge target its record names.
acm = AcmTargets(
    AcmImporter(boto3.client("acm", region_name=ACM_REGION)),
    DynamoDbTargetStore(dynamodb, SETTINGS.issue.table_name),
    EdgeSessions(boto3.client("sts")),
)
notifier = Notifier(boto3.client("sns"), SETTINGS.topic_arn)


def rotation() -> OriginCertificateRotation:
    issue = SETTINGS.issue
    ca = load_issuing_ca(store, kms, issue.issuing_key_id, issue.signing, issue.public_base_url, issue.ocsp_url)
    issuer = Issuer(ca, store, IssuancePolicy(issue.max_lifetime_days, issue.default_lifetime_days), acm)
    return OriginCertificateRotation(issuer, store, acm, notifier, timedelta(days=SETTINGS.window_days))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = rotation().run(datetime.now(UTC))
    metrics.add_metric(name="AcmCertificatesRotated", unit=MetricUnit.Count, value=len(report.rotated))
    # A repair means an earlier run failed between the ACM import and its record: alarm on it too.
    failures = len(report.failed) + len(report.repaired)
    metrics.add_metric(name="AcmRotationFailures", unit=MetricUnit.Count, value=failures)
    metrics.add_metric(name="AcmImportsRepaired", unit=MetricUnit.Count, value=len(report.repaired))
    metrics.add_metric(name="AcmCertificatesMissing", unit=MetricUnit.Count, value=len(report.missing))
    for entry in report.rotated:
        logger.info("ACM certificate rotated in place", extra=entry)
    for entry in report.repaired:
        logger.warning("unfinished ACM import repaired", extra=entry)
    for entry in report.failed + report.missing:
        logger.error("ACM certificate not rotated", extra=entry)
    return asdict(report)
