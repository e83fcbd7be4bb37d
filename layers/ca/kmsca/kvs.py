"""Mirror of the issuing CA's revoked, unexpired certificates in a CloudFront KeyValueStore.

A connection function looks the viewer certificate's serial number up at the edge
(``kvs.exists``) and denies the connection when it is there. Key: canonical serial number
(:mod:`kmsca.serial`); value: ``"<revoked_at> <reason>"`` (at most 41 bytes).

- Incremental (table stream, after each revocation): the revocations come from the stream
  records themselves (never the eventually consistent index), one ``DescribeKeyValueStore`` for the ETag,
  then ``UpdateKeys`` with the new keys: 2 calls for one revocation.
- Reconcile (schedule): ``DescribeKeyValueStore`` and ``ListKeys`` pages first, *then* the
  inventory, so a revocation that lands while it runs is either in what it read from the inventory
  or absent from what it read from the store: it can never be taken for a stale key. Keys to delete
  are checked once more against the table (consistent reads, :meth:`still_revoked`; the index
  lags), and a key whose record cannot be read is never deleted. The difference is applied as
  ``UpdateKeys`` batches of at most 50 keys chained by ETag from the ETag read first, so a write by
  anyone else in between is a conflict, never silently overwritten. Expired certificates are
  deleted, so the store stays far below its 5 MB limit.

Remembered state (:mod:`kmsca.kvs_state`, optional): after each write the CA stores the ETag it
got back and a digest of the content it left. A reconcile whose ``DescribeKeyValueStore`` returns
that ETag knows nobody else wrote since; if the inventory's revoked certificates still unexpired at
the state's time have that digest, the store holds exactly them: it deletes the ones expired since
(known keys) and lists nothing. So a reconcile with nothing to do costs one KeyValueStore call (plus
the state's GetItem and the inventory Query). Any doubt (another writer's ETag, a digest that differs,
an unreadable record, no state, a conflict, or a last listing older than
:data:`FULL_LISTING_INTERVAL`, the safety net) means the full listing above.

Every write carries ``IfMatch``; a ``ConflictException`` (someone else wrote) re-reads the ETag
and retries, at most :data:`CONFLICT_RETRIES` times; then :class:`KvsConflict` is raised and
nothing is lost: the next reconcile computes the difference again. Any other KeyValueStore error
(validation, throttling, quota, access denied, ...) is raised as :class:`KvsSyncFailed` with its
AWS error code; the handler counts every failure in ``KvsSyncFailures`` (``KvsSyncFailedAlarm``).

Limits (CloudFront Developer Guide, KeyValueStore quotas): 50 keys or 3 MB per UpdateKeys,
key 512 bytes, value 1 KB, store 5 MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .errors import InternalFailure
from .kvs_state import DynamoDbKvsState, KvsState, add_to_digest, content_digest
from .records import RevokedEntry, UnreadableRecord, iso
from .store import CertificateStore

MAX_KEYS_PER_UPDATE = 50
MAX_STORE_BYTES = 5 * 1024 * 1024
CONFLICT_RETRIES = 5
LIST_PAGE_SIZE = 50
FULL_LISTING_INTERVAL = timedelta(hours=24)  # the safety net: list the whole store at least this often


class KvsSyncFailed(InternalFailure):
    """A KeyValueStore call failed (any AWS error other than a conflict that a retry resolved).

    Args:
        message: what failed, with the AWS error code.
        error_code: the AWS error code (``ValidationException``, ``ThrottlingException``, ...); for a
            failure without an answer the botocore class name (``ReadTimeoutError``); "" when none.
        **details: more values that explain it.

    Attributes:
        code: ``KvsSyncFailed`` (the class name, like every :class:`~kmsca.errors.KmscaError`).
        error_code: as given (also in ``details``).
    """

    def __init__(self, message: str, error_code: str = "", **details: object) -> None:
        super().__init__(message, error_code=error_code, **details)
        self.error_code = error_code


class KvsConflict(KvsSyncFailed):
    """The store kept changing under us; raised after :data:`CONFLICT_RETRIES` conflicts in a row
    (``details``: ``conflicts``)."""


class KvsCapacityExceeded(InternalFailure):
    """The revoked, unexpired serial numbers would not fit in the store (5 MB); nothing was written
    (``details``: ``serial_numbers``, ``store_bytes`` needed, ``max_store_bytes``, when known)."""


def kvs_value(entry: RevokedEntry) -> str:
    """``"2026-11-21T08:00:00Z keyCompromise"``."""
    return f"{iso(entry.revoked_at)} {entry.reason}"


def entry_size(key: str, value: str) -> int:
    """Bytes an item takes in the store's size (key + value, UTF-8)."""
    return len(key.encode()) + len(value.encode())


@dataclass
class SyncReport:
    """What one sync did: keys put and deleted, AWS calls made by operation, conflicts retried."""

    puts: int = 0
    deletes: int = 0
    conflicts: int = 0
    store_bytes: int = 0
    calls: dict[str, int] | None = None
    kept: int = 0
    unreadable: list[UnreadableRecord] = field(default_factory=list)
    listed: bool = False  # the store was listed (False: the remembered state vouched for it)


def _batches(puts: list[dict[str, str]], deletes: list[str]) -> Iterator[tuple[list[dict[str, str]], list[str]]]:
    """Split into UpdateKeys batches of at most 50 keys (puts and deletes together)."""
    items: list[tuple[str, Any]] = [("put", p) for p in puts] + [("delete", d) for d in deletes]
    for start in range(0, len(items), MAX_KEYS_PER_UPDATE):
        chunk = items[start : start + MAX_KEYS_PER_UPDATE]
        yield [v for kind, v in chunk if kind == "put"], [v for kind, v in chunk if kind == "delete"]


class KeyValueStoreSync:
    """Keeps a KeyValueStore equal to the set of revoked, unexpired certificates of one CA.

    Args:
        client: boto3 ``cloudfront-keyvaluestore`` client (needs ``botocore[crt]`` for SigV4A).
        kvs_arn: the KeyValueStore's ARN.
        store: the inventory (its ``RevokedByCa`` index).
        ca: CA name whose revocations are mirrored (``issuing``).
        max_store_bytes: the store's capacity (5 MB, the KeyValueStore quota).
        state: where the CA remembers its last write (None: every reconcile lists the store).
    """

    def __init__(
        self,
        client: Any,
        kvs_arn: str,
        store: CertificateStore,
        ca: str,
        max_store_bytes: int = MAX_STORE_BYTES,
        state: DynamoDbKvsState | None = None,
    ) -> None:
        self._client = client
        self._arn = kvs_arn
        self._store = store
        self._ca = ca
        self._max_bytes = max_store_bytes
        self._state = state
        self._calls: dict[str, int] = {}

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """One KeyValueStore call; AWS errors other than ``ConflictException`` become
        :class:`KvsSyncFailed` (the adapter's translation)."""
        self._calls[operation] = self._calls.get(operation, 0) + 1
        try:
            return getattr(self._client, operation)(KvsARN=self._arn, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "ConflictException":
                raise
            raise KvsSyncFailed(
                f"KeyValueStore {operation} failed: {code or 'unknown error'}", code, operation=operation
            ) from exc
        except BotoCoreError as exc:  # no answer (timeout, connection, no awscrt): the target failed
            name = type(exc).__name__
            raise KvsSyncFailed(f"KeyValueStore {operation} failed: {name}", name, operation=operation) from exc

    def _describe(self) -> dict[str, Any]:
        return self._call("describe_key_value_store")

    def _write(
        self, puts: list[dict[str, str]], deletes: list[str], report: SyncReport, etag: str | None = None
    ) -> str | None:
        """Apply puts and deletes in ETag-chained batches of at most 50 keys (``etag``: a fresh one
        already read, else one DescribeKeyValueStore); returns the last ETag (``etag`` if nothing
        was written)."""
        if not puts and not deletes:
            return etag
        if etag is None:
            etag = self._describe()["ETag"]
        for batch_puts, batch_deletes in _batches(puts, deletes):
            for attempt in range(CONFLICT_RETRIES + 1):
                try:
                    kwargs: dict[str, Any] = {"IfMatch": etag}
                    if batch_puts:
                        kwargs["Puts"] = batch_puts
                    if batch_deletes:
                        kwargs["Deletes"] = [{"Key": key} for key in batch_deletes]
                    etag = self._call("update_keys", **kwargs)["ETag"]
                    break
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ConflictException":
                        raise
                    report.conflicts += 1
                    if attempt == CONFLICT_RETRIES:
                        raise KvsConflict(
                            f"{CONFLICT_RETRIES + 1} conflicting writes in a row; the next reconcile will retry",
                            conflicts=CONFLICT_RETRIES + 1,
                        ) from exc
                    etag = self._describe()["ETag"]
            report.puts += len(batch_puts)
            report.deletes += len(batch_deletes)
        return etag

    def apply_revocations(self, entries: Iterable[RevokedEntry], now: datetime) -> SyncReport:
        """Put the serials of newly revoked, unexpired certificates (after a revocation); when the
        remembered state described the store this write started from, it is carried forward."""
        self._calls = {}
        report = SyncReport()
        values = {e.serial_number: kvs_value(e) for e in entries if e.not_after >= now}
        puts = [{"Key": k, "Value": v} for k, v in values.items()]
        if puts:
            etag = self._describe()["ETag"]
            state = self._state.get() if self._state is not None else None
            final = self._write(puts, [], report, etag)
            if self._state is not None and state is not None and state.etag == etag and not report.conflicts:
                carried = KvsState(
                    etag=str(final),
                    digest=add_to_digest(state.digest, values.items()),
                    count=state.count + len(values),
                    as_of=state.as_of,
                    listed_at=state.listed_at,
                )
                self._state.put(carried, replaces_etag=etag)
        report.calls = dict(self._calls)
        return report

    def present_keys(self) -> dict[str, str]:
        """Every key and value in the store (``ListKeys``, 50 a page)."""
        found: dict[str, str] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MaxResults": LIST_PAGE_SIZE}
            if token:
                kwargs["NextToken"] = token
            page = self._call("list_keys", **kwargs)
            found.update({item["Key"]: item["Value"] for item in page.get("Items", [])})
            token = page.get("NextToken")
            if not token:
                return found

    def reconcile(self, now: datetime, problems: list[UnreadableRecord] | None = None) -> SyncReport:
        """Make the store equal to the inventory's revoked, unexpired certificates.

        Args:
            problems: receives the inventory records that could not be read (they are skipped, and
                their keys are never deleted from the store); also ``report.unreadable``.

        Raises:
            KvsCapacityExceeded: the desired content is larger than the store holds; nothing written.
            KvsConflict: see the module docstring.
        """
        self._calls = {}
        report = SyncReport(unreadable=problems if problems is not None else [])
        # The store first (its ETag, then its keys), the inventory second: see the module docstring.
        etag = self._describe()["ETag"]
        state = self._state.get() if self._state is not None else None
        if state is not None and state.etag == etag and state.as_of <= now < state.listed_at + FULL_LISTING_INTERVAL:
            if self._reconcile_from_state(state, etag, now, report):
                report.calls = dict(self._calls)
                return report
        report.listed = True
        present = self.present_keys()
        desired = self._desired(now, report)
        puts = [{"Key": k, "Value": v} for k, v in desired.items() if present.get(k) != v]
        unreadable = {u.serial_number for u in report.unreadable if u.serial_number}
        candidates = [k for k in present if k not in desired and k not in unreadable]
        keep = self._store.still_revoked(candidates, now) if candidates else set()
        deletes = [k for k in candidates if k not in keep]
        report.kept = len(present) - len(desired.keys() & present.keys()) - len(deletes)
        final = self._write(puts, deletes, report, etag)
        if self._state is not None and not report.conflicts:
            deleted = set(deletes)
            content = {k: v for k, v in present.items() if k not in deleted}
            content.update({p["Key"]: p["Value"] for p in puts})
            self._state.put(KvsState(str(final), content_digest(content), len(content), now, now))
        report.calls = dict(self._calls)
        return report

    def _desired(self, now: datetime, report: SyncReport) -> dict[str, str]:
        """The inventory's revoked, unexpired serials and their values (size checked)."""
        desired = {
            e.serial_number: kvs_value(e) for e in self._store.list_revoked(self._ca, now, report.unreadable)
        }
        report.store_bytes = sum(entry_size(k, v) for k, v in desired.items())
        if report.store_bytes > self._max_bytes:
            raise KvsCapacityExceeded(
                f"{len(desired)} revoked serial numbers need {report.store_bytes} bytes; "
                f"the KeyValueStore holds {self._max_bytes}",
                serial_numbers=len(desired),
                store_bytes=report.store_bytes,
                max_store_bytes=self._max_bytes,
            )
        return desired

    def _reconcile_from_state(self, state: KvsState, etag: str, now: datetime, report: SyncReport) -> bool:
        """Nobody wrote since the CA's last write (same ETag): if the inventory's revoked
        certificates unexpired at ``state.as_of`` have the remembered digest, the store holds
        exactly them; delete those expired since and return True. False: the caller lists."""
        problems: list[UnreadableRecord] = []
        entries = list(self._store.list_revoked(self._ca, state.as_of, problems))
        known = {e.serial_number: kvs_value(e) for e in entries}
        if problems or len(known) != state.count or content_digest(known) != state.digest:
            return False
        expired = {e.serial_number for e in entries if e.not_after < now}
        desired = {k: v for k, v in known.items() if k not in expired}
        report.store_bytes = sum(entry_size(k, v) for k, v in desired.items())
        if not expired:
            return True
        final = self._write([], sorted(expired), report, etag)
        if self._state is not None and not report.conflicts:
            carried = KvsState(str(final), content_digest(desired), len(desired), now, state.listed_at)
            self._state.put(carried, replaces_etag=state.etag)
        return True
