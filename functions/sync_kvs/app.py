"""KeyValueStore sync function: mirrors the issuing CA's revoked, unexpired serial numbers into
the CloudFront KeyValueStore that the connection function reads (see :mod:`kmsca.kvs`).

A stream batch (revocations) is applied incrementally; anything else (the schedule) reconciles
the whole store. Failures raise, so the stream or the schedule retries; a store that would
overflow raises an alarm metric and an SNS notification instead of failing silently.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.certificates import ISSUING
from kmsca.kvs import KeyValueStoreSync, KvsCapacityExceeded, KvsConflict
from kmsca.notify import Notifier
from kmsca.settings import KvsSettings
from kmsca.store import DynamoDbCertificateStore, revoked_entries_from_stream

logger = Logger()
metrics = Metrics()
tracer = Tracer()

SETTINGS = KvsSettings.from_env()
store = DynamoDbCertificateStore(boto3.client("dynamodb"), SETTINGS.table_name)
sync = KeyValueStoreSync(boto3.client("cloudfront-keyvaluestore"), SETTINGS.kvs_arn, store, ISSUING)
notifier = Notifier(boto3.client("sns"), SETTINGS.topic_arn)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    try:
        if "Records" in event:
            report = sync.apply_revocations(revoked_entries_from_stream(event["Records"]), now)
        else:
            report = sync.reconcile(now)
    except KvsCapacityExceeded as exc:
        metrics.add_metric(name="KvsCapacityExceeded", unit=MetricUnit.Count, value=1)
        notifier.notify(
            "KvsCapacityExceeded", "kmsca: revoked serials do not fit the KeyValueStore", {"detail": str(exc)}
        )
        logger.error("KeyValueStore capacity exceeded", extra={"detail": str(exc)})
        raise
    except KvsConflict:
        metrics.add_metric(name="KvsSyncFailures", unit=MetricUnit.Count, value=1)
        logger.exception("KeyValueStore kept changing; will retry")
        raise
    metrics.add_metric(name="KvsKeysPut", unit=MetricUnit.Count, value=report.puts)
    metrics.add_metric(name="KvsKeysDeleted", unit=MetricUnit.Count, value=report.deletes)
    logger.info("KeyValueStore synced", extra=asdict(report))
    return asdict(report)
