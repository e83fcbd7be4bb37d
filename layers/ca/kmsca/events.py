"""EventBridge events the CA publishes on the account's default event bus.

``source`` is the stack's ``EVENT_SOURCE`` (template: ``<ProjectName>.<EnvironmentName>``, e.g.
``kmsca.dev``); ``detail-type`` one of :data:`DETAIL_TYPES`. Other teams subscribe with a rule
such as ``{"source": ["kmsca.dev"], "detail-type": ["Certificate Expiring"]}``.

PutEvents takes at most 10 entries per call and reports failures per entry (EventBridge API
reference, PutEvents): failed entries are returned, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

CERTIFICATE_EXPIRING = "Certificate Expiring"
CA_CERTIFICATE_EXPIRING = "CA Certificate Expiring"
CERTIFICATE_SUPERSEDED = "Certificate Superseded"
DETAIL_TYPES = (CERTIFICATE_EXPIRING, CA_CERTIFICATE_EXPIRING, CERTIFICATE_SUPERSEDED)
#: PutEvents: at most 10 entries per request.
MAX_ENTRIES = 10


@dataclass(frozen=True)
class Event:
    """One event: ``detail_type`` (:data:`DETAIL_TYPES`) and ``detail`` (JSON-serialisable, no secrets)."""

    detail_type: str
    detail: Mapping[str, Any]


class EventPublisher:
    """Puts events on the default bus.

    Args:
        client: boto3 EventBridge client (injected).
        source: the events' ``source`` (``EVENT_SOURCE``).
    """

    def __init__(self, client: EventBridgeClient, source: str) -> None:
        self._client = client
        self._source = source

    def publish(self, events: Sequence[Event]) -> list[tuple[Event, str]]:
        """Put ``events`` in calls of at most 10; returns the (event, error code) of those that failed."""
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
            for event, result in zip(chunk, response.get("Entries", []), strict=False):
                if result.get("ErrorCode"):
                    failed.append((event, str(result["ErrorCode"])))
        return failed
