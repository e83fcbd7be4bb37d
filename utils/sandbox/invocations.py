"""The sandbox's functions: lookup by name or ARN, invocation, and the event sources feeding them.

:class:`FunctionsMixin` gives :class:`~utils.sandbox.server.Sandbox` its function registry
(``functions`` by logical id, lookup by name, ARN or ``name:qualifier``), invocation in a
worker (:meth:`~FunctionsMixin.run_function`, in the background, or through the Lambda API as
the administrator) and the SAM event sources (:data:`EVENT_SOURCES`: DynamoDB streams,
schedules; :meth:`~FunctionsMixin.trigger_schedule` runs a schedule now).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .context import SandboxError
from .events import DynamoDbStreamSource, FilterError, ScheduleSource
from .runtime import FunctionError, InvocationResult, LocalFunction

__all__ = ["EVENT_SOURCES", "EventSource", "EventSourceFactory", "FunctionsMixin"]

logger = logging.getLogger(__name__)


class EventSource(Protocol):
    """A background poller feeding a function (DynamoDB stream, schedule, ...)."""

    def start(self) -> None:
        """Begin delivering events (returns at once; work happens in a thread)."""

    def stop(self) -> None:
        """Stop delivering and join the thread."""


EventSourceFactory = Callable[[Any, LocalFunction, str, Mapping[str, Any]], EventSource]
#: SAM event ``Type`` ("DynamoDB", "Schedule", "ScheduleV2", ...) -> factory(sandbox, function,
#: event name, resolved Properties). A factory delivers events with ``sandbox.run_function``.
EVENT_SOURCES: dict[str, EventSourceFactory] = {
    "DynamoDB": DynamoDbStreamSource,
    "ScheduleV2": ScheduleSource,
    "Schedule": ScheduleSource,
}


class FunctionsMixin:
    """Functions and event sources of a sandbox (mixed into :class:`~utils.sandbox.server.Sandbox`)."""

    functions: dict[str, LocalFunction]
    schedules: dict[tuple[str, str], ScheduleSource]
    _names: dict[str, LocalFunction]
    _event_sources: dict[str, EventSource]
    _async_threads: list[threading.Thread]

    def client(self, service: str, region: str | None = None) -> Any:  # provided by the Sandbox
        raise NotImplementedError

    def resolve(self, value: Any) -> Any:  # provided by the Sandbox
        raise NotImplementedError

    def register_function(self, function: LocalFunction) -> None:
        """Make a function invocable by name and ARN (called by the function creator)."""
        self.functions[function.logical_id] = function
        self._names[function.name] = function

    def lookup_function(self, name_or_arn: str) -> tuple[LocalFunction | None, str | None]:
        """(function, qualifier) for a name, full/partial ARN, or name:qualifier; (None, None) if not ours."""
        parts = name_or_arn.split(":")
        if name_or_arn.startswith("arn:") and len(parts) >= 7:
            name, qualifier = parts[6], (parts[7] if len(parts) > 7 else None)
        elif len(parts) >= 3 and parts[1] == "function":
            name, qualifier = parts[2], (parts[3] if len(parts) > 3 else None)
        elif len(parts) == 2:
            name, qualifier = parts
        else:
            name, qualifier = name_or_arn, None
        function = self._names.get(name)
        return (function, qualifier) if function else (None, None)

    def _start_event_sources(self) -> None:
        for function in self.functions.values():
            for event_name, event in function.spec.events.items():
                kind = str(event.get("Type"))
                factory = EVENT_SOURCES.get(kind)
                if factory is None:
                    logger.info("%s event %s (%s) is not emulated yet", function.logical_id, event_name, kind)
                    continue
                try:
                    source = factory(self, function, event_name, self.resolve(event.get("Properties") or {}))
                    source.start()
                except (FilterError, ValueError) as exc:
                    raise SandboxError(f"{function.logical_id} event {event_name} ({kind}): {exc}") from exc
                self._event_sources[f"{function.logical_id}.{event_name}"] = source
                if isinstance(source, ScheduleSource):
                    self.schedules[(function.logical_id, event_name)] = source

    @property
    def event_sources(self) -> dict[str, EventSource]:
        """ "<FunctionLogicalId>.<EventName>" -> running event source (stream pollers, schedules)."""
        return dict(self._event_sources)

    def trigger_schedule(self, logical_id: str, event_name: str | None = None) -> InvocationResult:
        """Run a function's schedule (``ScheduleV2``/``Schedule`` event) now, as the scheduler would:
        the function gets the event's ``Input`` (parsed JSON). ``event_name`` may be omitted when
        the function has one schedule. Returns the :class:`InvocationResult` (check
        ``function_error`` or call ``raise_for_error()``); no retries.

        Raises:
            SandboxError: unknown function, no such schedule, or several and none named.
        """
        if logical_id not in self.functions:
            raise SandboxError(f"no function {logical_id} in the sandbox (has {sorted(self.functions)})")
        candidates = {name: source for (lid, name), source in self.schedules.items() if lid == logical_id}
        if not candidates:
            raise SandboxError(f"{logical_id} has no schedule event")
        if event_name is None:
            if len(candidates) > 1:
                raise SandboxError(f"{logical_id} has several schedules; name one of {sorted(candidates)}")
            (source,) = candidates.values()
        elif event_name in candidates:
            source = candidates[event_name]
        else:
            raise SandboxError(f"{logical_id} has no schedule event {event_name} (has {sorted(candidates)})")
        return source.fire()

    # -- invocations -------------------------------------------------------------------------------

    def run_function(
        self, logical_id: str, event: Any, *, wait: float | None = None, request_id: str | None = None
    ) -> InvocationResult:
        """Invoke a function in one of its workers (no HTTP); waits up to ``wait`` s for a free worker.

        Raises:
            Busy: every worker of the function stayed busy (HTTP API: 429 TooManyRequestsException).
        """
        function = self.functions[logical_id]
        request_id = request_id or str(uuid.uuid4())
        result = function.run(event, request_id, wait=wait)
        if result.function_error:
            error = result.json() or {}
            logger.info(
                "%s %s failed in %.0f ms: %s", function.name, request_id, result.duration_ms, error.get("errorType")
            )
        else:
            logger.info("%s %s succeeded in %.0f ms", function.name, request_id, result.duration_ms)
        return result

    def run_function_async(self, logical_id: str, event: Any) -> str:
        """Invoke in a background thread (InvocationType=Event); returns a request id at once."""
        request_id = str(uuid.uuid4())

        def call() -> None:
            try:
                self.run_function(logical_id, event, wait=3600, request_id=request_id)
            except Exception:
                logger.exception("asynchronous invocation of %s failed", logical_id)

        thread = threading.Thread(target=call, name=f"event-{logical_id}", daemon=True)
        self._async_threads = [t for t in self._async_threads if t.is_alive()]
        self._async_threads.append(thread)
        thread.start()
        return request_id

    def invoke(self, logical_id: str, payload: Any = None, *, invocation_type: str = "RequestResponse") -> Any:
        """Invoke a function through the Lambda API (boto3 -> HTTP -> worker) as the administrator.

        Returns the decoded response payload (None for Event), or raises :class:`FunctionError`
        whose ``error_type`` is the exception class name the handler raised.
        """
        response = self.client("lambda").invoke(
            FunctionName=self.functions[logical_id].name,
            InvocationType=invocation_type,
            Payload=json.dumps(payload if payload is not None else {}).encode(),
        )
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise FunctionError(json.loads(body))
        return json.loads(body) if body else None
