"""Expiry function (daily schedule): notices before certificates and CA certificates expire, as
EventBridge events and one SNS digest, and revocation of renewed certificates whose grace period
ended (see :mod:`kmsca.expiry`)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.events import EventPublisher
from kmsca.expiry import ExpiryJob
from kmsca.notify import Notifier
from kmsca.settings import ExpirySettings
from kmsca.store import DynamoDbCertificateStore
from kmsca.store.dynamodb.notices import DynamoDbNoticeMarkers

logger = Logger()
metrics = Metrics()
tracer = Tracer()

SETTINGS = ExpirySettings.from_env()
dynamodb = boto3.client("dynamodb")
job = ExpiryJob(
    DynamoDbCertificateStore(dynamodb, SETTINGS.table_name),
    DynamoDbNoticeMarkers(dynamodb, SETTINGS.table_name),
    EventPublisher(boto3.client("events"), SETTINGS.event_source),
    Notifier(boto3.client("sns"), SETTINGS.topic_arn),
    SETTINGS.thresholds,
    SETTINGS.ca_thresholds,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = job.run(datetime.now(UTC))
    metrics.add_metric(name="ExpiryNoticesSent", unit=MetricUnit.Count, value=len(report.notices))
    metrics.add_metric(name="CertificatesSuperseded", unit=MetricUnit.Count, value=len(report.superseded))
    metrics.add_metric(name="ExpiryNoticeFailures", unit=MetricUnit.Count, value=len(report.failed))
    if report.unreadable:  # skipped; UnreadableRecordsAlarm watches the metric
        metrics.add_metric(name="UnreadableRecords", unit=MetricUnit.Count, value=len(report.unreadable))
        for record in report.unreadable:
            logger.error("unreadable record", extra={"record_key": record["key"], "problem": record["problem"]})
    for failure in report.failed:
        logger.error("expiry notice or supersession failed", extra=failure)
    if report.failed:
        # fail the invocation so that ExpiryFunctionErrorsAlarm fires; released notices are retried
        raise RuntimeError(f"{len(report.failed)} expiry notice(s) or supersession(s) failed; see the log")
    return asdict(report)
