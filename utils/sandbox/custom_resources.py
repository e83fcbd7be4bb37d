"""Custom resources in the sandbox: the CloudFormation request/response protocol, for real.

:func:`create_custom_resource` sends ``Create`` to the ``ServiceToken`` function with a
CloudFormation event whose ``ResponseURL`` is the sandbox's own
``PUT /__sandbox__/cfn-response/{request-id}`` (served by :mod:`utils.sandbox.front`), waits for
that PUT (up to ``ServiceTimeout``) and checks the response as CloudFormation does
(:func:`custom_resource_outcome`): size, matching ids, Status, PhysicalResourceId, Data.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .context import SandboxError, StackContext
from .runtime import InvocationResult
from .template import Physical, Resource, stringify

__all__ = [
    "CFN_RESPONSE_PATH",
    "MAX_CFN_RESPONSE_BYTES",
    "PendingResponse",
    "create_custom_resource",
    "send_custom_resource_request",
]

CFN_RESPONSE_PATH = "/__sandbox__/cfn-response/"
#: CloudFormation's limit on a custom resource response, bytes.
MAX_CFN_RESPONSE_BYTES = 4096


@dataclass
class PendingResponse:
    """A custom-resource request waiting for its PUT to the ResponseURL."""

    done: threading.Event = field(default_factory=threading.Event)
    body: bytes = b""

    def deliver(self, body: bytes) -> None:
        """Record the first response body; later ones are ignored (CloudFormation keeps the first)."""
        if not self.done.is_set():
            self.body = body
            self.done.set()


def create_custom_resource(
    sandbox: StackContext, pending_responses: dict[str, PendingResponse], resource: Resource
) -> Physical:
    """Send Create to the ServiceToken function as CloudFormation does; wait for the PUT."""
    return send_custom_resource_request(sandbox, pending_responses, resource, "Create")


def send_custom_resource_request(
    sandbox: StackContext,
    pending_responses: dict[str, PendingResponse],
    resource: Resource,
    request_type: str,
    *,
    physical_resource_id: str | None = None,
    properties: Mapping[str, Any] | None = None,
    old_properties: Mapping[str, Any] | None = None,
) -> Physical:
    """Send a ``Create``, ``Update`` or ``Delete`` request as CloudFormation does; wait for the PUT.

    ``properties``: the (new) ResourceProperties, default the template's, resolved;
    ``old_properties`` (Update only): the previous ones, default the same as the new ones.

    Raises:
        SandboxError: the function failed without responding, answered FAILED, or sent a response
            CloudFormation would refuse.
    """
    if request_type not in ("Create", "Update", "Delete"):
        raise SandboxError(f"RequestType {request_type!r} is not Create, Update or Delete")
    props = stringify(dict(properties) if properties is not None else sandbox.resolve(resource.properties))
    token = props.get("ServiceToken")
    function, _ = sandbox.lookup_function(str(token or ""))
    if function is None:
        raise SandboxError(
            f"{resource.logical_id}: ServiceToken {token!r} is not a function of this sandbox "
            "(only Lambda-backed custom resources are emulated)"
        )
    request_id = str(uuid.uuid4())
    pending = pending_responses[request_id] = PendingResponse()
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": token,
        "ResponseURL": f"{sandbox.endpoint_url}{CFN_RESPONSE_PATH}{request_id}",
        "StackId": sandbox.stack_id,
        "RequestId": request_id,
        "LogicalResourceId": resource.logical_id,
        "ResourceType": resource.type,
        "ResourceProperties": props,
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = physical_resource_id or sandbox.physical[resource.logical_id].ref
    if request_type == "Update":
        event["OldResourceProperties"] = stringify(dict(old_properties)) if old_properties is not None else props
    outcome: dict[str, InvocationResult] = {}

    def call() -> None:
        outcome["result"] = sandbox.run_function(function.logical_id, event, wait=3600)

    worker = threading.Thread(target=call, name=f"cfn-{resource.logical_id}", daemon=True)
    worker.start()
    timeout = float(props.get("ServiceTimeout") or 3600)
    deadline = time.monotonic() + timeout
    try:
        while not pending.done.wait(0.05):
            if not worker.is_alive() and not pending.done.is_set():
                result = outcome.get("result")
                if result is not None and result.function_error:
                    error = result.json() or {}
                    raise SandboxError(
                        f"{resource.logical_id} ({resource.type}): {function.name} failed without "
                        f"responding: {error.get('errorType')}: {error.get('errorMessage')}"
                    )
                raise SandboxError(
                    f"{resource.logical_id} ({resource.type}): {function.name} returned without "
                    "sending a response to the ResponseURL"
                )
            if time.monotonic() > deadline:
                raise SandboxError(f"{resource.logical_id} ({resource.type}): no response within {timeout:.0f} s")
    finally:
        del pending_responses[request_id]
    worker.join(timeout=function.spec.timeout)
    return custom_resource_outcome(resource, event, pending.body)


def custom_resource_outcome(resource: Resource, event: Mapping[str, Any], body: bytes) -> Physical:
    """Check the response like CloudFormation; FAILED -> SandboxError with the Reason."""
    where = f"{resource.logical_id} ({resource.type})"
    if len(body) > MAX_CFN_RESPONSE_BYTES:
        raise SandboxError(f"{where}: response is {len(body)} bytes, over CloudFormation's 4096")
    try:
        response = json.loads(body)
    except ValueError as exc:
        raise SandboxError(f"{where}: response is not JSON: {exc}") from exc
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        if response.get(key) != event[key]:
            raise SandboxError(f"{where}: response {key} {response.get(key)!r} does not match the request")
    status = response.get("Status")
    if status == "FAILED":
        raise SandboxError(f"{where} failed: {response.get('Reason') or '(no Reason given)'}")
    if status != "SUCCESS":
        raise SandboxError(f"{where}: response Status {status!r} is neither SUCCESS nor FAILED")
    if not response.get("PhysicalResourceId"):
        raise SandboxError(f"{where}: response has no PhysicalResourceId")
    data = response.get("Data") or {}
    if not isinstance(data, dict):
        raise SandboxError(f"{where}: response Data is not an object")
    return Physical(ref=str(response["PhysicalResourceId"]), attrs=data)
