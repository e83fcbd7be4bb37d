"""Inventory function (read-only): list certificates, or show one.

Adapter only: parse the event into :class:`kmsca.models.ListRequest` or
:class:`kmsca.models.ShowRequest`, call :class:`kmsca.inventory.Inventory`, return its result.
Refusals propagate as :class:`kmsca.errors.CaError` (``InvalidRequest``, ``CertificateNotFound``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.errors import CaError, wire_errors
from kmsca.inventory import Inventory
from kmsca.models import ShowRequest, parse_inventory_request
from kmsca.settings import RevokeSettings
from kmsca.store import DynamoDbCertificateStore

logger = Logger()
metrics = Metrics()
tracer = Tracer()

SETTINGS = RevokeSettings.from_env()  # the table is all it needs
inventory = Inventory(DynamoDbCertificateStore(boto3.client("dynamodb"), SETTINGS.table_name))


@wire_errors(logger)
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = parse_inventory_request(event)
        now = datetime.now(UTC)
        if isinstance(request, ShowRequest):
            logger.append_keys(operation="show")
            return inventory.show(request.serial_number, now)
        logger.append_keys(operation="list")
        page = inventory.list_page(request.query())
    except CaError as exc:
        logger.warning("request refused", extra={"error_code": exc.code, "reason": exc.message})
        metrics.add_metric(name="InventoryRequestsRejected", unit=MetricUnit.Count, value=1)
        raise
    unreadable = page.pop("unreadable", [])
    if unreadable:  # left out of the listing; UnreadableRecordsAlarm watches the metric
        metrics.add_metric(name="UnreadableRecords", unit=MetricUnit.Count, value=len(unreadable))
        for record in unreadable:
            logger.error("unreadable record", extra={"record_key": record.key, "problem": record.problem})
    logger.info("listed", extra={"count": len(page["certificates"]), "queries": page["queries"]})
    return page
