"""The function-URL edge of the issue and revoke functions: the caller's identity in, HTTP out.

Two ways reach these functions:

- **Function URL** (``AuthType: AWS_IAM``): Lambda verifies the request's SigV4 signature and the
  caller's ``lambda:InvokeFunctionUrl`` permission, then invokes with a payload format 2.0 event
  whose ``requestContext.authorizer.iam`` names the caller (``accessKey``, ``accountId``,
  ``callerId``, ``userArn``, ``principalOrgId``; Lambda Developer Guide, "Invoking Lambda function
  URLs", request payload). The request is the JSON body of a ``POST``; the answer is
  ``{"statusCode", "headers", "body"}``: 200 with the response JSON, or an error status with
  ``{"error": <code>, "message": <sentence>}`` and, when the error has any, ``"details"`` (its
  structured fields, e.g. ``rule`` and ``reason`` of ``NotAuthorized``) (:data:`STATUS`).
- **Direct Invoke** (administrators: ``lambda:InvokeFunction``): the event is the request itself,
  no caller is known, and refusals are raised (``errorType`` = the code) as before.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, cast

from .caller_policy import NO_RULE, Caller
from .errors import CaError, InvalidRequest, NotAuthorized

#: HTTP status of each error code on the function URL; any other CaError is 400.
STATUS: dict[str, int] = {
    "NotAuthorized": 403,
    "CertificateNotFound": 404,
    "IdempotencyKeyReused": 409,
    "IdempotencyKeyInProgress": 409,
    "RenewalRefused": 409,
    "CaNotReady": 503,
    "InternalError": 500,
    "InvalidIssuancePolicy": 500,
    "SerialNumberCollision": 500,
}
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Invocation:
    """``request``: the request object to parse; ``caller``: the verified caller, None for a direct Invoke."""

    request: object
    caller: Caller | None


def is_function_url_event(event: object) -> bool:
    """Whether ``event`` is a function URL's payload format 2.0 event (not a direct Invoke's request)."""
    return (
        isinstance(event, dict)
        and event.get("version") == "2.0"
        and isinstance(event.get("requestContext"), dict)
        and "http" in event["requestContext"]
    )


def parse_invocation(event: object) -> Invocation:
    """The request and the caller of an invocation.

    Raises:
        InvalidRequest: a function-URL request that is not a POST of a JSON body (at most 64 KiB).
        NotAuthorized: a function-URL request without ``authorizer.iam`` (a URL whose AuthType is
            not AWS_IAM: no caller is known, so nothing is allowed).
    """
    if not is_function_url_event(event):
        return Invocation(event, None)
    event = cast(dict[str, Any], event)
    context = event["requestContext"]
    iam = (context.get("authorizer") or {}).get("iam") or {}
    arn, account = iam.get("userArn"), iam.get("accountId")
    if not isinstance(arn, str) or not isinstance(account, str) or not arn or not account:
        raise NotAuthorized(NO_RULE, "the request carries no verified IAM caller (the function URL must use AWS_IAM)")
    org = iam.get("principalOrgId")
    caller = Caller(arn, account, org if isinstance(org, str) and org else None)
    method = str((context.get("http") or {}).get("method", ""))
    if method != "POST":
        raise InvalidRequest(f"send the request as POST with a JSON body, not {method[:16]}")
    body = event.get("body") or ""
    try:
        data = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else str(body).encode()
    except (binascii.Error, ValueError):
        raise InvalidRequest("the request body is not valid base64") from None
    if len(data) > MAX_BODY_BYTES:
        raise InvalidRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        request = json.loads(data) if data.strip() else None
    except ValueError:
        raise InvalidRequest("the request body is not JSON") from None
    return Invocation(request, caller)


def http_response(status: int, body: object) -> dict[str, Any]:
    """A function URL response (payload format 2.0) with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, sort_keys=True),
        "isBase64Encoded": False,
    }


class FunctionUrlResponder:
    """The :class:`kmsca.errors.Responder` of function-URL events: a result is 200, a refusal
    :data:`STATUS` with ``{"error": <code>, "message": <sentence>}``. Pass it to
    ``wire_errors(logger, FUNCTION_URL)``; direct invokes keep raising."""

    def applies(self, event: Any) -> bool:
        return is_function_url_event(event)

    def ok(self, result: Any) -> dict[str, Any]:
        return http_response(200, result)

    def refused(self, wire: CaError) -> dict[str, Any]:
        body: dict[str, Any] = {"error": wire.code, "message": wire.message}
        if wire.details:  # e.g. NotAuthorized: rule, reason
            body["details"] = dict(wire.details)
        return http_response(STATUS.get(wire.code, 400), body)


FUNCTION_URL = FunctionUrlResponder()
