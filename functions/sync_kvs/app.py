"""KeyValueStore sync function: mirrors the issuing CA's revoked, unexpired serial numbers into
the KeyValueStore of every edge target, which their connection functions read (see
:mod:`kmsca.kvs_fanout` and :mod:`kmsca.kvs`).

A stream batch (revocations) is applied incrementally; anything else (the schedule) reconciles
every store. A target that fails is recorded for a full reconcile (its ``KVSSTATE#<target>`` item),
counted in ``EdgeTargetSyncFailed`` (dimension ``target``, ``EdgeTargetSyncFailedAlarm``) and in
``KvsSyncFailures`` (``KvsSyncFailedAlarm``), and does not fail the batch: the other targets get
their keys and the next reconcile repairs it. Failures of the CA's own table raise, so the stream
or the schedule retries. A store that would overflow raises an alarm metric and an SNS
notification. Records that cannot be read are skipped, logged by key and counted in
``UnreadableRecords``; they never stop the others.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.certificates import ISSUING
from kmsca.edge_session import EdgeSessions
from kmsca.kvs import KvsCapacityExceeded
from kmsca.kvs_fanout import KVS_REGION, KVS_SERVICE, FanOutReport, KvsFanOut
from kmsca.notify import Notifier
from kmsca.records import UnreadableRecord
from kmsca.settings import KvsSettings
from kmsca.store import DynamoDbCertificateStore, revoked_entries_from_stream
from kmsca.targets import DynamoDbTargetStore

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=("botocore",))  # not patch_all: it imports every library X-Ray knows

SETTINGS = KvsSettings.from_env()
dynamodb = boto3.client("dynamodb")
store = DynamoDbCertificateStore(dynamodb, SETTINGS.table_name)
sync = KvsFanOut(
    DynamoDbTargetStore(dynamodb, SETTINGS.table_name),
    EdgeSessions(boto3.client("sts")),  # one AssumeRole per target and hour, per container
    store,
    dynamodb,
    SETTINGS.table_name,
    ISSUING,
    local_kvs_arn=SETTINGS.kvs_arn,
    local_client=lambda: boto3.client(KVS_SERVICE, region_name=KVS_REGION),
)
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
    except Exception as exc:  # the CA's own table (targets, inventory): the stream or the schedule retries
        metrics.add_metric(name="KvsSyncFailures", unit=MetricUnit.Count, value=1)
        code = getattr(exc, "error_code", "") or getattr(exc, "code", "")  # the AWS error code, else the CA's
        logger.exception("KeyValueStore sync failed; will retry", extra={"error_code": code})
        raise
    finally:
        report_unreadable(problems)
    report_failures(report)
    metrics.add_metric(name="KvsKeysPut", unit=MetricUnit.Count, value=report.puts)
    metrics.add_metric(name="KvsKeysDeleted", unit=MetricUnit.Count, value=report.deletes)
    result = report.summary()
    result["unreadable"] = len(problems)
    logger.info("KeyValueStores synced", extra=result)
    if report.capacity_exceeded:
        raise KvsCapacityExceeded(report.capacity_exceeded)
    return result


def report_failures(report: FanOutReport) -> None:
    """Count each failed target (``EdgeTargetSyncFailed`` with dimension ``target``, and
    ``KvsSyncFailures``), log it, and notify when the serials would not fit a store."""
    for name, code in report.failed.items():
        logger.error("edge target not synced; the next reconcile repairs it", extra={"target": name, "error": code})
        metrics.add_metric(name="KvsSyncFailures", unit=MetricUnit.Count, value=1)
        with single_metric(
            name="EdgeTargetSyncFailed", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
        ) as metric:
            metric.add_dimension(name="service", value=str(metrics.service))
            metric.add_dimension(name="target", value=name)
    if report.capacity_exceeded:
        metrics.add_metric(name="KvsCapacityExceeded", unit=MetricUnit.Count, value=1)
        notifier.notify(
            "KvsCapacityExceeded",
            "kmsca: revoked serials do not fit the KeyValueStore",
            {"detail": report.capacity_exceeded},
        )
        logger.error("KeyValueStore capacity exceeded", extra={"detail": report.capacity_exceeded})


def report_unreadable(problems: list[UnreadableRecord]) -> None:
    """Log each unreadable record with its key (never its content) and count them
    (``UnreadableRecords``, which ``UnreadableRecordsAlarm`` watches)."""
    for problem in problems:
        logger.error("unreadable record", extra={"record_key": problem.key, "problem": problem.problem})
    if problems:
        metrics.add_metric(name="UnreadableRecords", unit=MetricUnit.Count, value=len(problems))
