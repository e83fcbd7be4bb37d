"""Registering, listing and deregistering edge targets (the targets function and ``Custom::EdgeTarget``).

Requests (the targets function's payload, parsed here at the boundary):

- ``{"operation": "register", "name", "account_id", "role_arn", "external_id", "kvs_arn",
  "trust_store_id"?, "registered_by"?}`` -> ``{"target": {...}}`` (no external id);
- ``{"operation": "list"}`` -> ``{"targets": [{...}, ...]}``;
- ``{"operation": "deregister", "name"}`` -> ``{"deregistered": name}``.

Registration checks everything before it writes, in this order, and writes nothing on any failure:

1. the formats and that role and KeyValueStore are in the named account (:class:`EdgeTarget`), and
   that the role is one the CA's functions may assume (``<project>-<environment>-edge-*``);
2. the name is free (:class:`TargetAlreadyRegistered`);
3. ``AssumeRole`` WITH the external id works (else :class:`EdgeRoleRefused`);
4. ``DescribeKeyValueStore`` of the target's store works through that session, and
   ``GetTrustStore`` of its trust store when one is named (else :class:`EdgeTargetUnavailable`);
5. ``AssumeRole`` WITHOUT the external id, and with a random other one, is refused (else
   :class:`EdgeRoleUnsafe`: whoever else the trust policy names could make the CA its confused
   deputy; a ``StringLike`` ``*`` condition is caught by the second).

A newly registered target's KeyValueStore is filled by the next scheduled reconcile of the
KeyValueStore sync function (at most ``KvsReconcileSchedule`` later); revocations from then on reach
it at once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictStr

from .edge_probe import probe_edge_resources
from .edge_session import EdgeSessions
from .errors import EdgeRoleRefused, EdgeRoleUnsafe, InvalidRequest, TargetNotFound
from .models import _Strict, parse_request
from .targets import LOCAL_TARGET, DynamoDbTargetStore, EdgeTarget, check_assumable, check_target_name

#: ``Custom::EdgeTarget`` runs right after the nested edge stack created its role: IAM may take a few
#: seconds to honour the new trust policy, so a refused AssumeRole is retried after these pauses (s).
PROPAGATION_PAUSES = (5.0, 10.0, 15.0, 20.0)


class RegisterRequest(_Strict):
    """``register``: see the module docstring."""

    operation: Literal["register"]
    name: StrictStr = Field(max_length=63)
    account_id: StrictStr = Field(max_length=12)
    role_arn: StrictStr = Field(max_length=2048)
    external_id: StrictStr = Field(max_length=1224)
    kvs_arn: StrictStr = Field(max_length=2048)
    trust_store_id: StrictStr | None = Field(default=None, max_length=128)
    registered_by: StrictStr = Field(default="", max_length=256)


class ListRequest(_Strict):
    operation: Literal["list"]


class DeregisterRequest(_Strict):
    operation: Literal["deregister"]
    name: StrictStr = Field(max_length=63)


REQUESTS: dict[str, type[_Strict]] = {"register": RegisterRequest, "list": ListRequest, "deregister": DeregisterRequest}


def parse_targets_request(event: object) -> Any:
    """The typed request of a targets function event.

    Raises:
        InvalidRequest: not an object, an unknown ``operation``, a missing or unknown field.
    """
    operation = event.get("operation") if isinstance(event, dict) else None
    model = REQUESTS.get(operation) if isinstance(operation, str) else None
    if model is None:
        raise InvalidRequest(f"operation must be one of {', '.join(REQUESTS)}")
    return parse_request(model, event)


class TargetRegistry:
    """The targets function's service.

    Args:
        store: the registry.
        sessions: AssumeRole into targets (the targets function's role).
        role_name_prefix: ``<project>-<environment>-edge-``: the roles the CA's functions may assume.
    """

    def __init__(
        self,
        store: DynamoDbTargetStore,
        sessions: EdgeSessions,
        role_name_prefix: str,
        pauses: Sequence[float] = PROPAGATION_PAUSES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._prefix = role_name_prefix
        self._pauses = tuple(pauses)
        self._sleep = sleep

    def handle(self, request: Any, now: datetime) -> dict[str, Any]:
        """Run one parsed request (see the module docstring for the shapes)."""
        if isinstance(request, RegisterRequest):
            target = EdgeTarget(
                name=request.name,
                account_id=request.account_id,
                role_arn=request.role_arn,
                external_id=request.external_id,
                kvs_arn=request.kvs_arn,
                trust_store_id=request.trust_store_id or None,
                registered_at=now,
                registered_by=request.registered_by,
            )
            return {"target": self.register(target).public()}
        if isinstance(request, DeregisterRequest):
            self._store.delete(check_target_name(request.name))
            return {"deregistered": request.name}
        return {"targets": [t.public() for t in self._store.list_targets()]}

    def register(self, target: EdgeTarget, *, replace: bool = False) -> EdgeTarget:
        """Validate ``target`` against its account (module docstring), then store it.

        Raises:
            InvalidTarget, TargetAlreadyRegistered, EdgeRoleRefused, EdgeTargetUnavailable, EdgeRoleUnsafe.
        """
        check_assumable(target, self._prefix)
        if not replace:
            self._store.require_free(target.name)
        self.validate(target)
        self._store.put(target, replace=replace)
        return target

    def validate(self, target: EdgeTarget) -> None:
        """Steps 3-5 of the module docstring (fresh sessions, nothing cached)."""
        credentials = self._sessions.assume(target)
        probe_edge_resources(self._sessions, credentials, target)
        wrong = "kmsca-check-" + secrets.token_hex(16)  # no trust policy should accept it
        for attempt, shown in ((False, "without the external id"), (wrong, "with another external id")):
            try:
                self._sessions.assume(target, external_id=attempt)
            except EdgeRoleRefused:
                continue
            raise EdgeRoleUnsafe(
                f"edge target {target.name!r}: the role {target.role_arn} can be assumed {shown}; its trust "
                "policy needs the condition StringEquals sts:ExternalId (deploy edge/template.yaml)"
            )

    def register_local(self, properties: Mapping[str, Any], now: datetime) -> dict[str, str]:
        """``Custom::EdgeTarget`` Create/Update: (re-)register the stack's own edge stack.

        Properties: ``Name`` (default ``local``), ``AccountId``, ``RoleArn``, ``ExternalId``,
        ``KvsArn``, ``TrustStoreId`` (optional). Returns the attributes ``Name``, ``AccountId``.
        """
        target = EdgeTarget(
            name=str(properties.get("Name", LOCAL_TARGET)),
            account_id=str(properties.get("AccountId", "")),
            role_arn=str(properties.get("RoleArn", "")),
            external_id=str(properties.get("ExternalId", "")),
            kvs_arn=str(properties.get("KvsArn", "")),
            trust_store_id=str(properties.get("TrustStoreId", "")) or None,
            registered_at=now,
            registered_by="cloudformation",
        )
        for pause in (*self._pauses, None):
            try:
                self.register(target, replace=True)
                break
            except EdgeRoleRefused:
                if pause is None:
                    raise
                self._sleep(pause)  # a new role's trust policy may not be in effect yet
        return {"Name": target.name, "AccountId": target.account_id}

    def deregister_local(self, properties: Mapping[str, Any]) -> None:
        """``Custom::EdgeTarget`` Delete: deregister (an absent target is fine)."""
        try:
            self._store.delete(check_target_name(str(properties.get("Name", LOCAL_TARGET))))
        except TargetNotFound:
            pass

