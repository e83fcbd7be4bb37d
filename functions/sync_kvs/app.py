"""KeyValueStore sync function: mirrors the issuing CA's revoked, unexpired serial numbers into
the CloudFront KeyValueStore that the connection function reads (see :mod:`kmsca.kvs`).

A stream batch (revocations) is applied incrementally; anything else (the schedule) reconciles
the whole store. Failures raise, so the stream or the schedule retries, and every kind of failure
counts in ``KvsSyncFailures`` (``KvsSyncFailedAlarm``); a store that would overflow raises an
alarm metric and an SNS notification instead of failing silently. Records that cannot be read
are skipped, logged by key and counted in ``UnreadableRecords``; they never stop the others.
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
from kmsca.kvs import KeyValueStoreSync, KvsCapacityExceeded
from kmsca.kvs_state import DynamoDbKvsState
from kmsca.notify import Notifier
from kmsca.records import UnreadableRecord
from kmsca.settings import KvsSettings
from kmsca.store import DynamoDbCertificateStore, revoked_entries_from_stream

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=("botocore",))  # not patch_all: it imports every library X-Ray knows

SETTINGS = KvsSettings.from_env()
dynamodb = boto3.client("dynamodb")
store = DynamoDbCertificateStore(dynamodb, SETTINGS.table_name)
state = DynamoDbKvsState(dynamodb, SETTINGS.table_name, SETTINGS.kvs_arn)  # the CA's last write: ETag, digest
sync = KeyValueStoreSync(boto3.client("cloudfront-keyvaluestore"), SETTINGS.kvs_arn, store, ISSUING, state=state)
notifier = Notifier(boto3.client("sns"), SETTINGS.topic_arn)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    problems: list[UnreadableRecord] = []
    try:
        if "Records" in event:
            report = sync.apply_revocations(revoked_entries_from_stream(event["Records"], problems=problems), now)
        else:
            report = sync.reconcile(now, problems)
    except KvsCapacityExceeded as exc:
        metrics.add_metric(name="KvsCapacityExceeded", unit=MetricUnit.Count, value=1)
        notifier.notify(
            "KvsCapacityExceeded", "kmsca: revoked serials do not fit the KeyValueStore", {"detail": str(exc)}
        )
        logger.error("KeyValueStore capacity exceeded", extra={"detail": str(exc)})
        raise
    except Exception as exc:  # conflicts, throttling, validation, quota, access denied, the table: all alarm
        metrics.add_metric(name="KvsSyncFailures", unit=MetricUnit.Count, value=1)
        logger.exception("KeyValueStore sync failed; will retry", extra={"error_code": getattr(exc, "code", "")})
        raise
    finally:
        report_unreadable(problems)
    metrics.add_metric(name="KvsKeysPut", unit=MetricUnit.Count, value=report.puts)
    metrics.add_metric(name="KvsKeysDeleted", unit=MetricUnit.Count, value=report.deletes)
    result = asdict(report)
    result["unreadable"] = len(report.unreadable)
    logger.info("KeyValueStore synced", extra=result)
    return result


def report_unreadable(problems: list[UnreadableRecord]) -> None:
    """Log each unreadable record with its key (never its content) and count them
    (``UnreadableRecords``, which ``UnreadableRecordsAlarm`` watches)."""
    for problem in problems:
        logger.error("unreadable record", extra={"record_key": problem.key, "problem": problem.problem})
    if problems:
        metrics.add_metric(name="UnreadableRecords", unit=MetricUnit.Count, value=len(problems))
