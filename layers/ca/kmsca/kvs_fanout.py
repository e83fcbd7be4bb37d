"""Revoked serials to every edge target's KeyValueStore (:mod:`kmsca.kvs` once per target).

Targets are the registered edge targets (:mod:`kmsca.targets`; one ``GetItem`` per run) plus, when
the function has a ``KVS_ARN`` of its own account and no target ``local`` is registered, that store
as target ``local`` written with the function's own role (the single-account stack before the edge
stack registers ``local``). Each target's store is written through its edge role
(:class:`~kmsca.edge_session.EdgeSessions`: one AssumeRole per target per hour and container) and has
its own remembered state ``KVSSTATE#<target>`` (:mod:`kmsca.kvs_state`), so an idle reconcile costs
one ``DescribeKeyValueStore`` per target.

Isolation: a target that fails (AssumeRole refused, its store throttled, missing or denied, a
conflict that did not settle) does not hold back the others: its state item is replaced by a
"stale" marker (``failed_at``, ``error_code``), so the next reconcile of that target lists its store
in full and repairs it, and the failure is reported (the handler publishes ``EdgeTargetSyncFailed``
with the target's name as dimension, which ``EdgeTargetSyncFailedAlarm`` watches). A stream batch
therefore succeeds when only targets failed; failures of the CA's own table (reading targets or the
inventory) still raise, so the stream retries. A newly registered target is filled by the next
scheduled reconcile; from its registration on, revocations reach it incrementally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .edge_session import EdgeSessions
from .errors import AwsCallFailed, CaError
from .kvs import MAX_STORE_BYTES, KeyValueStoreSync, KvsCapacityExceeded, KvsSyncFailed, SyncReport
from .kvs_state import DynamoDbKvsState
from .records import RevokedEntry, UnreadableRecord
from .store import CertificateStore
from .targets import LOCAL_TARGET, DynamoDbTargetStore, EdgeTarget

KVS_SERVICE = "cloudfront-keyvaluestore"
KVS_REGION = "us-east-1"  # the data plane is global (SigV4A); the client needs a region to sign


@dataclass(frozen=True)
class SyncTarget:
    """One store to sync: a registered edge target (``edge``), or the function's own ``KVS_ARN``
    (``edge`` None: written with the function's credentials)."""

    name: str
    kvs_arn: str
    edge: EdgeTarget | None = None


@dataclass
class FanOutReport:
    """Per target: what its sync did, or the error code that stopped it."""

    reports: dict[str, SyncReport] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    capacity_exceeded: str = ""  # the message, when the revoked serials would not fit a store

    @property
    def puts(self) -> int:
        return sum(r.puts for r in self.reports.values())

    @property
    def deletes(self) -> int:
        return sum(r.deletes for r in self.reports.values())

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (the handler's response and log): the totals in the single-store
        shape (``puts``, ``deletes``, ``conflicts``, ``calls`` by operation, ``kept``, ``store_bytes``
        (the largest), ``listed`` (any)), each target's report (``targets``) and the failed ones
        (``failed``: name -> error code)."""
        calls: dict[str, int] = {}
        for report in self.reports.values():
            for operation, count in (report.calls or {}).items():
                calls[operation] = calls.get(operation, 0) + count
        return {
            "puts": self.puts,
            "deletes": self.deletes,
            "conflicts": sum(r.conflicts for r in self.reports.values()),
            "calls": calls,
            "kept": sum(r.kept for r in self.reports.values()),
            "store_bytes": max((r.store_bytes for r in self.reports.values()), default=0),
            "listed": any(r.listed for r in self.reports.values()),
            "targets": {
                name: {k: v for k, v in asdict(r).items() if k != "unreadable"} for name, r in self.reports.items()
            },
            "failed": dict(self.failed),
        }


class KvsFanOut:
    """Syncs every target's KeyValueStore.

    Args:
        targets: the registry.
        sessions: AssumeRole into targets.
        store: the inventory.
        dynamodb: client of the CA table (state items).
        table_name: the CA table.
        ca: the CA whose revocations are mirrored (``issuing``).
        local_kvs_arn: the function's own ``KVS_ARN`` (None: none).
        local_client: makes the client of that store with the function's credentials.
        max_store_bytes: capacity of a store (5 MB).
    """

    def __init__(
        self,
        targets: DynamoDbTargetStore,
        sessions: EdgeSessions,
        store: CertificateStore,
        dynamodb: Any,
        table_name: str,
        ca: str,
        local_kvs_arn: str | None = None,
        local_client: Callable[[], Any] | None = None,
        max_store_bytes: int = MAX_STORE_BYTES,
    ) -> None:
        self._targets = targets
        self._sessions = sessions
        self._store = store
        self._dynamodb = dynamodb
        self._table = table_name
        self._ca = ca
        self._local_arn = local_kvs_arn
        self._local_factory = local_client
        self._local_client: Any = None
        self.max_store_bytes = max_store_bytes

    def targets(self) -> list[SyncTarget]:
        """The registered targets, and the function's own store as ``local`` unless one is registered."""
        found = [SyncTarget(t.name, t.kvs_arn, t) for t in self._targets.list_targets()]
        if self._local_arn and all(t.name != LOCAL_TARGET for t in found):
            found.insert(0, SyncTarget(LOCAL_TARGET, self._local_arn))
        return found

    def state(self, target: SyncTarget) -> DynamoDbKvsState:
        return DynamoDbKvsState(self._dynamodb, self._table, target.kvs_arn, state_id=target.name)

    def sync(self, target: SyncTarget) -> KeyValueStoreSync:
        """The single-store sync of ``target`` (its client through its edge role, or the local one)."""
        if target.edge is not None:
            client = self._sessions.client(target.edge, KVS_SERVICE, KVS_REGION)
        else:
            if self._local_client is None:
                if self._local_factory is None:
                    raise ValueError("no client for the function's own KeyValueStore")
                self._local_client = self._local_factory()
            client = self._local_client
        state = self.state(target)
        return KeyValueStoreSync(client, target.kvs_arn, self._store, self._ca, self.max_store_bytes, state)

    def apply_revocations(self, entries: Iterable[RevokedEntry], now: datetime) -> FanOutReport:
        """Put newly revoked serials into every target's store (one target failing does not stop the others)."""
        batch = list(entries)
        return self._each(lambda sync: sync.apply_revocations(batch, now), now)

    def reconcile(self, now: datetime, problems: list[UnreadableRecord] | None = None) -> FanOutReport:
        """Reconcile every target's store (see :meth:`kmsca.kvs.KeyValueStoreSync.reconcile`). Records
        that cannot be read are reported once (those of the first target's run) in ``problems``."""
        sink = problems if problems is not None else []
        first = [True]

        def run(sync: KeyValueStoreSync) -> SyncReport:
            own: list[UnreadableRecord] = []
            report = sync.reconcile(now, own)
            if first[0]:
                sink.extend(own)
                first[0] = False
            return report

        return self._each(run, now)

    def _each(self, action: Callable[[KeyValueStoreSync], SyncReport], now: datetime) -> FanOutReport:
        result = FanOutReport()
        for target in self.targets():
            try:
                result.reports[target.name] = action(self.sync(target))
            except KvsCapacityExceeded as exc:  # the same content for every store: reported once
                result.capacity_exceeded = str(exc)
                result.failed[target.name] = "KvsCapacityExceeded"
            except (KvsSyncFailed, CaError, AwsCallFailed) as exc:  # this target only: recorded, the others go on
                if isinstance(exc, AwsCallFailed) and exc.answered:
                    raise  # the CA's own table refused (targets, inventory): the stream or the schedule retries
                result.failed[target.name] = failure_code(exc)
                if isinstance(exc, CaError) and target.edge is not None:
                    self._sessions.forget(target.edge)
                self._mark_stale(target, result.failed[target.name], now)
        return result

    def _mark_stale(self, target: SyncTarget, code: str, now: datetime) -> None:
        try:
            self.state(target).mark_stale(code, now)
        except Exception:  # noqa: S110 - the table failed too; the stream retries the batch, the reconcile lists
            pass


def failure_code(exc: KvsSyncFailed | CaError | AwsCallFailed) -> str:
    """What a target's failure is recorded as: the AWS error code of a failed call (the botocore
    class name for one without an answer), else the CA error's code (``EdgeRoleRefused``,
    ``KvsConflict``, ...)."""
    if isinstance(exc, (KvsSyncFailed, AwsCallFailed)):
        return exc.error_code or exc.code
    return exc.code
