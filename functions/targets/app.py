"""Targets function: register, list and deregister the CA's edge targets (workload accounts), and
the ``Custom::EdgeTarget`` resource that registers the stack's own edge stack as ``local``.

Adapter only: parse the event (:func:`kmsca.target_registration.parse_targets_request`), call
:class:`kmsca.target_registration.TargetRegistry`, return its response. Refusals propagate as
:class:`kmsca.errors.CaError` (``errorType`` = the code: ``InvalidTarget``, ``EdgeRoleRefused``,
``EdgeRoleUnsafe``, ``EdgeTargetUnavailable``, ``TargetAlreadyRegistered``, ``TargetNotFound``).
The external id is never logged nor returned.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.custom_resource import is_custom_resource_event, run_custom_resource
from kmsca.edge_session import EdgeSessions
from kmsca.errors import CaError, wire_errors
from kmsca.settings import TargetsSettings
from kmsca.target_registration import TargetRegistry, parse_targets_request
from kmsca.targets import DynamoDbTargetStore

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=("botocore",))  # not patch_all: it imports every library X-Ray knows

SETTINGS = TargetsSettings.from_env()
registry = TargetRegistry(
    DynamoDbTargetStore(boto3.client("dynamodb"), SETTINGS.table_name),
    EdgeSessions(boto3.client("sts")),
    SETTINGS.edge_role_name_prefix,
)


def custom_resource(event: dict[str, Any]) -> dict[str, str]:
    """``Custom::EdgeTarget``: CloudFormation is always answered (FAILED names the error code)."""
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    name = str(event.get("ResourceProperties", {}).get("Name", "local"))
    return run_custom_resource(
        event,
        lambda e: registry.register_local(e.get("ResourceProperties", {}), datetime.now(UTC)),
        f"edge-target/{name}",
        delete=lambda e: registry.deregister_local(e.get("ResourceProperties", {})),
    )


@wire_errors(logger)
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_custom_resource_event(event):
        return custom_resource(event)
    try:
        request = parse_targets_request(event)
        logger.append_keys(operation=request.operation, target=getattr(request, "name", None))
        response = registry.handle(request, datetime.now(UTC))
    except CaError as exc:
        logger.warning("targets request refused", extra={"error_code": exc.code, "reason": exc.message})
        metrics.add_metric(name="TargetRequestsRejected", unit=MetricUnit.Count, value=1)
        raise
    logger.info("targets request done")
    return response
