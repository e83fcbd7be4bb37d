"""CloudFormation custom-resource protocol (AWS CloudFormation User Guide, "Custom resources").

A custom-resource handler must always answer the pre-signed ``ResponseURL`` with SUCCESS or
FAILED, or the stack waits for the resource's time-out. :func:`run_custom_resource` does that
around the handler's work.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .errors import error_name


def is_custom_resource_event(event: object) -> bool:
    """True for a CloudFormation custom-resource request."""
    return isinstance(event, dict) and "RequestType" in event and "ResponseURL" in event


def send_response(
    event: Mapping[str, Any], status: str, reason: str, data: Mapping[str, str], physical_resource_id: str
) -> None:
    """PUT the result to the pre-signed ``ResponseURL`` (body at most 4 KB; Reason is cut to 1,000 chars)."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": event.get("PhysicalResourceId", physical_resource_id),
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": dict(data),
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's pre-signed S3 URL
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def run_custom_resource(
    event: Mapping[str, Any],
    work: Callable[[Mapping[str, Any]], dict[str, str]],
    physical_resource_id: str,
    delete: Callable[[Mapping[str, Any]], None] | None = None,
) -> dict[str, str]:
    """Run ``work(event)`` for Create/Update and ``delete(event)`` for Delete (default: nothing, a CA
    is never deleted by a stack) and answer CloudFormation. On failure answers FAILED with
    ``<ErrorType>: <message>`` and re-raises.

    Returns:
        The resource's attributes (``Fn::GetAtt`` names).
    """
    try:
        if event["RequestType"] == "Delete":
            if delete is not None:
                delete(event)
            data: dict[str, str] = {}
        else:
            data = work(event)
    except Exception as exc:
        send_response(event, "FAILED", f"{error_name(exc)}: {exc}", {}, physical_resource_id)
        raise
    send_response(event, "SUCCESS", "OK", data, physical_resource_id)
    return data
