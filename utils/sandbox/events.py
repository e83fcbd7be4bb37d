"""Event sources of the local sandbox: DynamoDB streams and (EventBridge) schedules.

- :class:`DynamoDbStreamSource` (SAM ``Type: DynamoDB``) polls the table's stream through moto
  (``dynamodbstreams``: DescribeStream, GetShardIterator, GetRecords) in a background thread
  with the function's execution-role credentials, as Lambda's event source mapping does,
  keeps the records that pass the event's ``FilterCriteria`` (Lambda event filtering), batches
  them (``BatchSize``, ``MaximumBatchingWindowInSeconds``) and invokes the function in-process
  with a Lambda-shaped ``{"Records": [...]}`` event. A failed batch is retried
  (``MaximumRetryAttempts``, short exponential backoff), bisected when
  ``BisectBatchOnFunctionError``, and finally described to the ``DestinationConfig.OnFailure``
  queue with the function's credentials (so its role needs ``sqs:SendMessage``, as on AWS);
  records older than ``MaximumRecordAgeInSeconds`` go there without an invocation.
- :class:`ScheduleSource` (SAM ``Type: ScheduleV2`` and ``Schedule``) does nothing on its own
  unless the sandbox runs with ``run_schedules=True`` (then ``rate(...)`` expressions fire on a
  timer); :meth:`ScheduleSource.fire` (``Sandbox.trigger_schedule``) invokes the function with
  the event's ``Input``, as EventBridge Scheduler would.

:func:`matches_pattern` implements Lambda's filter-rule syntax: exact values, ``exists``,
``prefix``, ``suffix``, ``equals-ignore-case``, ``anything-but`` (values or ``prefix``),
``numeric`` comparisons; a record passes when any filter of the event matches it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import StackContext as Sandbox
    from .runtime import InvocationResult, LocalFunction

__all__ = [
    "DynamoDbStreamSource",
    "FilterError",
    "ScheduleSource",
    "lambda_stream_record",
    "matches_any",
    "matches_pattern",
    "parse_filters",
    "rate_seconds",
]

logger = logging.getLogger(__name__)

#: Seconds between two GetRecords calls of a stream poller.
STREAM_POLL_INTERVAL = 0.25
#: Retries of a failing batch when the event says -1 (infinite): the sandbox gives up after these.
INFINITE_RETRIES_CAP = 10
_MAX_BACKOFF = 2.0


class FilterError(ValueError):
    """A FilterCriteria pattern the sandbox cannot read."""


# ---------------------------------------------------------------------------------------------
# Lambda event filtering
# ---------------------------------------------------------------------------------------------

_MISSING = object()


def parse_filters(properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The event's ``FilterCriteria.Filters[].Pattern`` documents (JSON strings or objects)."""
    criteria = properties.get("FilterCriteria") or {}
    patterns = []
    for entry in criteria.get("Filters") or []:
        raw = entry.get("Pattern") if isinstance(entry, Mapping) else None
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise FilterError(f"FilterCriteria pattern is not JSON: {exc}: {entry.get('Pattern')!r}") from exc
        if not isinstance(raw, dict):
            raise FilterError(f"FilterCriteria pattern must be a JSON object, got {raw!r}")
        _check_pattern(raw)
        patterns.append(raw)
    return patterns


def _check_pattern(pattern: Mapping[str, Any], path: str = "") -> None:
    for key, rule in pattern.items():
        where = f"{path}.{key}" if path else key
        if isinstance(rule, Mapping):
            _check_pattern(rule, where)
        elif not isinstance(rule, list):
            raise FilterError(f"FilterCriteria: {where} must be an object or an array of values/matchers")
        else:
            for matcher in rule:
                if isinstance(matcher, Mapping):
                    if len(matcher) != 1:
                        raise FilterError(f"FilterCriteria: {where}: one operator per matcher, got {matcher}")
                    (operator,) = matcher
                    if operator not in _OPERATORS and operator != "exists":
                        raise FilterError(f"FilterCriteria: {where}: operator {operator!r} is not supported")


def _numeric(conditions: Sequence[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    checks = {
        "=": lambda a, b: a == b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    pairs = list(conditions)
    if len(pairs) % 2:
        return False
    return all(checks[pairs[i]](value, pairs[i + 1]) for i in range(0, len(pairs), 2) if pairs[i] in checks)


def _anything_but(spec: Any, value: Any) -> bool:
    if value is _MISSING:
        return False
    if isinstance(spec, Mapping):
        if "prefix" in spec:
            return not (isinstance(value, str) and value.startswith(str(spec["prefix"])))
        if "suffix" in spec:
            return not (isinstance(value, str) and value.endswith(str(spec["suffix"])))
        if "equals-ignore-case" in spec:
            targets = spec["equals-ignore-case"]
            targets = targets if isinstance(targets, list) else [targets]
            return not (isinstance(value, str) and value.lower() in [str(t).lower() for t in targets])
        return False
    excluded = spec if isinstance(spec, list) else [spec]
    return value not in excluded


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    # "exists" is handled where a key can be missing (_value_matches, matches_pattern)
    "prefix": lambda spec, v: isinstance(v, str) and v.startswith(str(spec)),
    "suffix": lambda spec, v: isinstance(v, str) and v.endswith(str(spec)),
    "equals-ignore-case": lambda spec, v: isinstance(v, str) and v.lower() == str(spec).lower(),
    "anything-but": _anything_but,
    "numeric": _numeric,
}


def _value_matches(matcher: Any, value: Any) -> bool:
    """One matcher of a value list against a present (non-missing) scalar value."""
    if isinstance(matcher, Mapping):
        ((operator, spec),) = matcher.items()
        if operator == "exists":
            return bool(spec)
        return bool(_OPERATORS[operator](spec, value))
    if isinstance(matcher, bool) or isinstance(value, bool):
        return matcher is value
    return matcher == value


def _rule_matches(rule: list[Any], value: Any) -> bool:
    if value is _MISSING:
        return any(isinstance(m, Mapping) and m.get("exists") is False for m in rule)
    if isinstance(value, Mapping):  # an object where the rule expects values: only "exists" can match
        return any(isinstance(m, Mapping) and m.get("exists") is True for m in rule)
    values = value if isinstance(value, list) else [value]
    return any(_value_matches(m, v) for m in rule for v in values)


def matches_pattern(pattern: Mapping[str, Any], document: Any) -> bool:
    """Whether ``document`` (a record, as the function would receive it) matches one filter pattern."""
    if not isinstance(document, Mapping):
        return False
    for key, rule in pattern.items():
        value = document.get(key, _MISSING)
        if isinstance(rule, Mapping):
            if not isinstance(value, Mapping) or not matches_pattern(rule, value):
                return False
        elif not _rule_matches(rule, value):
            return False
    return True


def matches_any(patterns: Sequence[Mapping[str, Any]], document: Any) -> bool:
    """No patterns: everything passes; else the record must match at least one."""
    return not patterns or any(matches_pattern(p, document) for p in patterns)


# ---------------------------------------------------------------------------------------------
# DynamoDB streams
# ---------------------------------------------------------------------------------------------


def _attribute_json(value: Any) -> Any:
    """A boto3 AttributeValue (bytes for B/BS) -> the JSON form Lambda delivers (base64 strings)."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {k: _attribute_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_attribute_json(v) for v in value]
    return value


def lambda_stream_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record (as boto3 returns it) -> a record of Lambda's DynamoDB event."""
    data = dict(record.get("dynamodb") or {})
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = int(created.timestamp())
    dynamodb = {
        key: _attribute_json(data[key])
        for key in (
            "ApproximateCreationDateTime",
            "Keys",
            "NewImage",
            "OldImage",
            "SequenceNumber",
            "SizeBytes",
            "StreamViewType",
        )
        if key in data
    }
    result: dict[str, Any] = {
        "eventID": record.get("eventID") or uuid.uuid4().hex,
        "eventName": record.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if record.get("userIdentity"):
        result["userIdentity"] = dict(record["userIdentity"])
    return result


class DynamoDbStreamSource:
    """Feeds one function from one table stream (SAM ``Type: DynamoDB`` event), like a Lambda
    event source mapping. :meth:`start` positions the iterator (``StartingPosition``: LATEST =
    records written after start, TRIM_HORIZON = all) before returning.

    Attributes for tests: ``delivered`` (batches the function accepted), ``failed`` (batches
    given up after retries), ``filtered_out`` (records dropped by FilterCriteria).
    """

    def __init__(
        self,
        sandbox: Sandbox,
        function: LocalFunction,
        event_name: str,
        properties: Mapping[str, Any],
        *,
        poll_interval: float = STREAM_POLL_INTERVAL,
    ) -> None:
        self.sandbox = sandbox
        self.function = function
        self.event_name = event_name
        self.stream_arn = str(properties.get("Stream") or "")
        if not self.stream_arn:
            raise ValueError(f"{function.logical_id} event {event_name}: no Stream")
        self.starting_position = str(properties.get("StartingPosition") or "LATEST")
        if self.starting_position not in ("LATEST", "TRIM_HORIZON"):
            raise ValueError(
                f"{function.logical_id} event {event_name}: StartingPosition {self.starting_position} "
                "is not supported by the sandbox (LATEST or TRIM_HORIZON)"
            )
        self.batch_size = max(1, min(10000, int(properties.get("BatchSize") or 100)))
        self.window = float(properties.get("MaximumBatchingWindowInSeconds") or 0)
        retries = int(properties.get("MaximumRetryAttempts", -1))
        self.max_retries = INFINITE_RETRIES_CAP if retries < 0 else retries
        self.bisect = str(properties.get("BisectBatchOnFunctionError", False)).lower() == "true"
        age = int(properties.get("MaximumRecordAgeInSeconds", -1))
        self.max_record_age = None if age < 0 else age
        on_failure = ((properties.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        self.on_failure: str | None = str(on_failure) if on_failure else None
        #: Messages sent to the OnFailure destination (what Lambda sends: the batch's shard and range).
        self.sent_on_failure = 0
        self.enabled = str(properties.get("Enabled", True)).lower() != "false"
        self.filters = parse_filters(properties)
        self.poll_interval = poll_interval
        self.delivered = 0
        self.failed = 0
        self.filtered_out = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._iterators: dict[str, str] = {}
        self._pending: list[dict[str, Any]] = []
        #: Sequence number -> shard id of the records not delivered yet (for the OnFailure record).
        self._shard_of: dict[str, str] = {}
        self._pending_since = 0.0

    @property
    def name(self) -> str:
        return f"{self.function.logical_id}.{self.event_name}"

    def start(self) -> None:
        if not self.enabled:
            logger.info("%s: stream event source disabled (Enabled: false)", self.name)
            return
        streams = self.sandbox.function_client(self.function.logical_id, "dynamodbstreams")
        description = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards") or []:
            shard_id = shard["ShardId"]
            self._iterators[shard_id] = streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=self.starting_position
            )["ShardIterator"]
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.name}", daemon=True)
        self._thread.start()
        logger.info(
            "%s: polling %s (%s, batch %d, window %.1f s, %d filter(s))",
            self.name,
            self.stream_arn,
            self.starting_position,
            self.batch_size,
            self.window,
            len(self.filters),
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.function.spec.timeout + 5)
            if self._thread.is_alive():
                logger.warning("%s: poller still busy after stop (an invocation is running)", self.name)
            self._thread = None

    # -- polling ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once()
            except Exception:  # a poller never dies; moto may be resetting
                if self._stop.is_set():
                    return
                logger.exception("%s: polling %s failed", self.name, self.stream_arn)
            self._stop.wait(self.poll_interval)

    def _poll_once(self) -> None:
        streams = self.sandbox.function_client(self.function.logical_id, "dynamodbstreams")
        for shard_id, iterator in list(self._iterators.items()):
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            self._iterators[shard_id] = response.get("NextShardIterator") or iterator
            _forget_iterator(self.sandbox, iterator, self._iterators[shard_id])
            for record in response.get("Records") or []:
                event_record = lambda_stream_record(record, self.stream_arn, self.sandbox.region)
                if matches_any(self.filters, event_record):
                    self._shard_of[str(event_record["dynamodb"].get("SequenceNumber"))] = shard_id
                    if not self._pending:
                        self._pending_since = time.monotonic()
                    self._pending.append(event_record)
                else:
                    self.filtered_out += 1
        while self._pending and (
            len(self._pending) >= self.batch_size or time.monotonic() - self._pending_since >= self.window
        ):
            batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
            self._pending_since = time.monotonic()
            self._deliver(batch)
            if self._stop.is_set():
                return

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Invoke with the batch, retried per MaximumRetryAttempts; on failure bisect (when
        BisectBatchOnFunctionError) and retry each half, and finally send the batch's description
        to the OnFailure destination, as Lambda's event source mapping does."""
        fresh, expired = self._split_by_age(batch)
        if expired:
            self._give_up(expired, "RecordAgeExceeded")
        if fresh:
            self._deliver_with_retries(fresh)
        for record in batch:
            self._shard_of.pop(str(record["dynamodb"].get("SequenceNumber")), None)

    def _split_by_age(self, batch: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self.max_record_age is None:
            return batch, []
        oldest = time.time() - self.max_record_age
        fresh = [r for r in batch if r["dynamodb"].get("ApproximateCreationDateTime", time.time()) >= oldest]
        return fresh, [r for r in batch if r not in fresh]

    def _deliver_with_retries(self, batch: list[dict[str, Any]]) -> None:
        event = {"Records": batch}
        error: dict[str, Any] = {}
        for attempt in range(self.max_retries + 1):
            result = self.sandbox.run_function(self.function.logical_id, event, wait=3600)
            if not result.function_error:
                self.delivered += 1
                return
            error = result.json() or {}
            if attempt < self.max_retries:
                delay = min(_MAX_BACKOFF, 0.2 * 2**attempt)
                logger.warning(
                    "%s: batch of %d record(s) failed (%s: %s); retry %d/%d in %.1f s",
                    self.name,
                    len(batch),
                    error.get("errorType"),
                    error.get("errorMessage"),
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                if self._stop.wait(delay):
                    return
        if self.bisect and len(batch) > 1:
            half = len(batch) // 2
            logger.warning("%s: batch of %d record(s) failed; bisecting", self.name, len(batch))
            self._deliver_with_retries(batch[:half])
            self._deliver_with_retries(batch[half:])
            return
        self._give_up(batch, str(error.get("errorType") or "FunctionError"))

    def _give_up(self, batch: list[dict[str, Any]], condition: str) -> None:
        self.failed += 1
        logger.error(
            "%s: batch of %d record(s) (sequence numbers %s..%s) given up (%s)%s",
            self.name,
            len(batch),
            batch[0]["dynamodb"].get("SequenceNumber"),
            batch[-1]["dynamodb"].get("SequenceNumber"),
            condition,
            f"; sent to {self.on_failure}" if self.on_failure else "; skipped",
        )
        if self.on_failure:
            self._send_on_failure(batch, condition)

    def _send_on_failure(self, batch: list[dict[str, Any]], condition: str) -> None:
        """The OnFailure record Lambda sends for a stream batch: where to find the records, not them."""
        document = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function.arn,
                "condition": condition,
                "approximateInvokeCount": self.max_retries + 1,
            },
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "version": "1.0",
            "DDBStreamBatchInfo": {
                "shardId": self._shard_of.get(str(batch[0]["dynamodb"].get("SequenceNumber")), ""),
                "startSequenceNumber": batch[0]["dynamodb"].get("SequenceNumber"),
                "endSequenceNumber": batch[-1]["dynamodb"].get("SequenceNumber"),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }
        destination = str(self.on_failure)
        if ":sqs:" not in destination:
            logger.error("%s: OnFailure destination %s is not emulated (SQS only)", self.name, destination)
            return
        sqs = self.sandbox.function_client(self.function.logical_id, "sqs")
        _, _, _, _, account, name = destination.split(":", 5)
        try:  # Lambda sends by ARN; the queue URL follows from it (no sqs:GetQueueUrl needed)
            sqs.send_message(QueueUrl=f"{self.sandbox.endpoint_url}/{account}/{name}", MessageBody=json.dumps(document))
            self.sent_on_failure += 1
        except Exception:  # Lambda cannot deliver either: the record is lost, loudly
            logger.exception("%s: could not send the failed batch to %s", self.name, destination)


def _forget_iterator(sandbox: Sandbox, used: str, current: str) -> None:
    """Drop a consumed shard iterator from moto (it keeps every iterator it ever issued)."""
    if used == current:
        return
    with contextlib.suppress(Exception):
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        dynamodbstreams_backends[sandbox.account_id][sandbox.region].shard_iterators.pop(used, None)


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------

_RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of ``rate(N unit)``; None for cron()/at() expressions."""
    match = _RATE_RE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class ScheduleSource:
    """A ``ScheduleV2`` (EventBridge Scheduler) or ``Schedule`` (EventBridge rule) event.

    Fires only through :meth:`fire` unless ``sandbox.run_schedules``; then a ``rate()``
    expression runs on a timer (first run one period after start), retried per ``RetryPolicy``.
    ``runs`` counts invocations.
    """

    def __init__(self, sandbox: Sandbox, function: LocalFunction, event_name: str, properties: Mapping[str, Any]):
        self.sandbox = sandbox
        self.function = function
        self.event_name = event_name
        self.kind = str(function.spec.events[event_name].get("Type"))
        self.expression = str(properties.get("ScheduleExpression") or properties.get("Schedule") or "")
        self.input = properties.get("Input")
        state = properties.get("State")
        enabled = properties.get("Enabled", True)
        self.enabled = (str(state).upper() != "DISABLED") if state is not None else str(enabled).lower() != "false"
        retry = properties.get("RetryPolicy") or {}
        self.max_retries = int(retry.get("MaximumRetryAttempts", 0 if self.kind == "Schedule" else 185))
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"{self.function.logical_id}.{self.event_name}"

    def event(self) -> Any:
        """The payload the scheduler sends: the parsed ``Input``, else what AWS sends by default."""
        if self.input is not None:
            if isinstance(self.input, str):
                try:
                    return json.loads(self.input)
                except ValueError:
                    return self.input
            return self.input
        if self.kind == "Schedule":  # an EventBridge rule's scheduled event
            return {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": self.sandbox.account_id,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self.sandbox.region,
                "resources": [],
                "detail": {},
            }
        return {}

    def fire(self) -> InvocationResult:
        """Invoke the function once with :meth:`event` (no retry); returns the invocation result."""
        self.runs += 1
        logger.info("%s: schedule %s fired", self.name, self.expression)
        return self.sandbox.run_function(self.function.logical_id, self.event(), wait=3600)

    def start(self) -> None:
        if not self.sandbox.run_schedules or not self.enabled:
            return
        period = rate_seconds(self.expression)
        if period is None:
            logger.warning("%s: %s is not a rate() expression; not run on a timer", self.name, self.expression)
            return
        self._thread = threading.Thread(target=self._run, args=(period,), name=f"schedule-{self.name}", daemon=True)
        self._thread.start()
        logger.info("%s: runs every %.0f s (%s)", self.name, period, self.expression)

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            for attempt in range(min(self.max_retries, INFINITE_RETRIES_CAP) + 1):
                try:
                    result = self.fire()
                except Exception:
                    logger.exception("%s: scheduled invocation failed", self.name)
                    break
                if not result.function_error or self._stop.wait(min(_MAX_BACKOFF * 30, 2.0 * 2**attempt)):
                    break

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.function.spec.timeout + 5)
            self._thread = None
