"""ACM rotation function (daily schedule): re-issue CloudFront origin client certificates that
expire soon and re-import them into the same ACM ARN (see :mod:`kmsca.rotation`), and put a
``Certificate Rotated`` or ``Certificate Rotation Failed`` event per ARN (:mod:`kmsca.lifecycle_events`).
An event refused after retries is logged with its detail and counted in
``EventPublicationFailures`` (alarmed); the rotation itself is done and is not run again for it."""

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
from kmsca.edge_session import EdgeSessions
from kmsca.errors import AwsCallFailed, error_name
from kmsca.events import Event, EventPublisher
from kmsca.lifecycle_events import rotation_events
from kmsca.notify import Notifier
from kmsca.rotation import OriginCertificateRotation
from kmsca.settings import RotationSettings
from kmsca.store import DynamoDbCertificateStore
from kmsca.targets import DynamoDbTargetStore
from kmsca.wiring import build_issuer

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
events = EventPublisher(boto3.client("events"), SETTINGS.event_source)
#: Attempts per refused event entry (PutEvents FailedEntryCount).
EVENT_ATTEMPTS = 3


def rotation() -> OriginCertificateRotation:
    issuer = build_issuer(SETTINGS.issue, store, kms, acm)
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
    publish_events(rotation_events(report.rotated, report.failed, report.missing))
    return asdict(report)


def publish_events(batch: list[Event]) -> None:
    """Put the run's events; one refused every attempt is logged with its detail (public fields
    only) and counted in ``EventPublicationFailures`` (alarmed), never raised: the run's work is done."""
    if not batch:
        return
    try:
        failed = events.publish(batch, attempts=EVENT_ATTEMPTS)
    except AwsCallFailed as exc:
        failed = [(event, error_name(exc)) for event in batch]
    for event, code in failed:
        logger.error("event not put", extra={"detail_type": event.detail_type, "detail": event.detail, "error": code})
    if failed:
        metrics.add_metric(name="EventPublicationFailures", unit=MetricUnit.Count, value=len(failed))
