"""Revoke function: mark an issued certificate revoked with an RFC 5280 reason code.

Adapter only: parse into :class:`kmsca.revocation.RevokeRequest`, call
:func:`kmsca.revocation.revoke`, return its response. Refusals propagate as
:class:`kmsca.errors.CaError` (``errorType`` = the code). The table stream then triggers CRL
publication and the KeyValueStore sync.

Two paths reach it (:mod:`kmsca.function_url`): the function URL (``AuthType: AWS_IAM``; the
verified caller's issuance policy applies, :mod:`kmsca.caller_policy`, answers are HTTP with
``{"error", "message"}`` on refusal) and a direct Invoke (administrators with
``lambda:InvokeFunction``; no policy, refusals raised as before).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.caller_policy import UNRESTRICTED, grant_for
from kmsca.errors import CaError, wire_errors
from kmsca.function_url import FUNCTION_URL, parse_invocation
from kmsca.models import parse_request
from kmsca.policy_store import DynamoDbPolicyStore
from kmsca.revocation import RevokeRequest, revoke
from kmsca.settings import RevokeSettings
from kmsca.store import DynamoDbCertificateStore

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=("botocore",))  # not patch_all: it imports every library X-Ray knows

SETTINGS = RevokeSettings.from_env()
dynamodb = boto3.client("dynamodb")
store = DynamoDbCertificateStore(dynamodb, SETTINGS.table_name)
policies = DynamoDbPolicyStore(dynamodb, SETTINGS.table_name)


@wire_errors(logger, FUNCTION_URL)
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    try:
        invocation = parse_invocation(event)
        request = parse_request(RevokeRequest, invocation.request)
        caller = invocation.caller
        grant = UNRESTRICTED  # direct Invoke: administrators (lambda:InvokeFunction), no policy
        if caller is not None:
            stored = policies.load()
            grant = grant_for(stored.document if stored else None, caller, context.invoked_function_arn.split(":")[4])
            logger.append_keys(caller=caller.arn, policy_rule=grant.rule.name if grant.rule else None)
        response = revoke(store, request, datetime.now(UTC), caller, grant)
    except CaError as exc:
        logger.warning("revocation refused", extra={"error_code": exc.code, "reason": exc.message})
        metrics.add_metric(name="RevocationsRejected", unit=MetricUnit.Count, value=1)
        raise
    logger.append_keys(serial_number=response["serial_number"])
    if response["already_revoked"]:
        logger.info("certificate was already revoked", extra={"revocation_reason": response["reason"]})
        metrics.add_metric(name="RevocationsRepeated", unit=MetricUnit.Count, value=1)
    else:
        logger.info("certificate revoked", extra={"revocation_reason": response["reason"]})
        metrics.add_metric(name="CertificatesRevoked", unit=MetricUnit.Count, value=1)
    return response
