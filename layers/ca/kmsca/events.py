"""EventBridge events the CA publishes on the account's default event bus.

``source`` is the stack's ``EVENT_SOURCE`` (template: ``<ProjectName>.<EnvironmentName>``, e.g.
``kmsca.dev``); ``detail-type`` one of :data:`DETAIL_TYPES`. Other teams subscribe with a rule
such as ``{"source": ["kmsca.dev"], "detail-type": ["Certificate Expiring"]}``.

Who publishes what (detail fields in README, "Certificate events"):

- ``Certificate Issued``, ``Certificate Revoked``: the CRL publication function, from the table
  stream (:mod:`kmsca.lifecycle_events`); the issue and revoke functions make no extra call.
- ``Certificate Rotated``, ``Certificate Rotation Failed``: the ACM rotation function.
- ``Certificate Expiring``, ``CA Certificate Expiring``, ``Certificate Superseded``: the expiry job.

PutEvents takes at most 10 entries per call and reports failures per entry (EventBridge API
reference, PutEvents: ``FailedEntryCount``, ``Entries[].ErrorCode``): failed entries are retried
when asked and then returned, never dropped silently. Delivery is at least once: a retried
stream batch or run may put an event twice (subscribers deduplicate on ``detail-type`` and
``detail.serial_number``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .aws_errors import translated

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

CERTIFICATE_EXPIRING = "Certificate Expiring"
CA_CERTIFICATE_EXPIRING = "CA Certificate Expiring"
CERTIFICATE_SUPERSEDED = "Certificate Superseded"
CERTIFICATE_ISSUED = "Certificate Issued"
CERTIFICATE_REVOKED = "Certificate Revoked"
CERTIFICATE_ROTATED = "Certificate Rotated"
CERTIFICATE_ROTATION_FAILED = "Certificate Rotation Failed"
DETAIL_TYPES = (
    CERTIFICATE_EXPIRING,
    CA_CERTIFICATE_EXPIRING,
    CERTIFICATE_SUPERSEDED,
    CERTIFICATE_ISSUED,
    CERTIFICATE_REVOKED,
    CERTIFICATE_ROTATED,
    CERTIFICATE_ROTATION_FAILED,
)
#: PutEvents: at most 10 entries per request.
MAX_ENTRIES = 10


@dataclass(frozen=True)
class Event:
    """One event: ``detail_type`` (:data:`DETAIL_TYPES`) and ``detail`` (JSON-serialisable, no secrets)."""

    detail_type: str
    detail: Mapping[str, Any]


@translated("events")
class EventPublisher:
    """Puts events on the default bus (the EventBridge adapter).

    Args:
        client: boto3 EventBridge client (injected).
        source: the events' ``source`` (``EVENT_SOURCE``).
    """

    def __init__(
        self, client: EventBridgeClient, source: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._client = client
        self._source = source
        self._sleep = sleep

    def publish(self, events: Sequence[Event], attempts: int = 1) -> list[tuple[Event, str]]:
        """Put ``events`` in calls of at most 10.

        Args:
            events: what to put, in order.
            attempts: how often an entry that failed (``ErrorCode`` in the response) is put, in
                all; retries wait 0.2 s, 0.4 s, ... (the failures are mostly throttling or
                ``InternalFailure``).

        Returns:
            (event, error code) of the entries that failed every attempt; empty when all were put.

        Raises:
            AwsCallFailed: a whole call failed (after botocore's own retries; the botocore
                exception is its ``__cause__``); the caller decides (a stream batch fails and is
                retried).
        """
        failed = self._put(events)
        for attempt in range(1, attempts):
            if not failed:
                break
            self._sleep(0.2 * 2 ** (attempt - 1))
            failed = self._put([event for event, _ in failed])
        return failed

    def _put(self, events: Sequence[Event]) -> list[tuple[Event, str]]:
        failed: list[tuple[Event, str]] = []
        for start in range(0, len(events), MAX_ENTRIES):
            chunk = events[start : start + MAX_ENTRIES]
            response = self._client.put_events(
                Entries=[
                    {
                        "Source": self._source,
                        "DetailType": event.detail_type,
                        "Detail": json.dumps(event.detail, separators=(",", ":"), default=str),
                        "EventBusName": "default",
                    }
                    for event in chunk
                ]
            )
            results = list(response.get("Entries", []))
            for index, event in enumerate(chunk):
                # an entry without its result (never seen; the API answers one per entry) is not put
                result = results[index] if index < len(results) else {"ErrorCode": "NoResult"}
                if result.get("ErrorCode"):
                    failed.append((event, str(result["ErrorCode"])))
        return failed
