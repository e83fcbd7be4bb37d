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
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .records import RevokedEntry, UnreadableRecord, iso
from .store import CertificateStore

MAX_KEYS_PER_UPDATE = 50
MAX_STORE_BYTES = 5 * 1024 * 1024
CONFLICT_RETRIES = 5
LIST_PAGE_SIZE = 50


class KvsSyncFailed(Exception):
    """A KeyValueStore call failed (any AWS error other than a conflict that a retry resolved).

    Attributes:
        code: the AWS error code (``ValidationException``, ``ThrottlingException``, ...).
    """

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class KvsConflict(KvsSyncFailed):
    """The store kept changing under us; raised after :data:`CONFLICT_RETRIES` conflicts in a row."""


class KvsCapacityExceeded(Exception):
    """The revoked, unexpired serial numbers would not fit in the store (5 MB); nothing was written."""


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
    """

    def __init__(
        self, client: Any, kvs_arn: str, store: CertificateStore, ca: str, max_store_bytes: int = MAX_STORE_BYTES
    ) -> None:
        self._client = client
        self._arn = kvs_arn
        self._store = store
        self._ca = ca
        self._max_bytes = max_store_bytes
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
            raise KvsSyncFailed(f"KeyValueStore {operation} failed: {code or 'unknown error'}", code) from exc

    def _describe(self) -> dict[str, Any]:
        return self._call("describe_key_value_store")

    def _write(
        self, puts: list[dict[str, str]], deletes: list[str], report: SyncReport, etag: str | None = None
    ) -> None:
        """Apply puts and deletes in ETag-chained batches of at most 50 keys (``etag``: a fresh one
        already read, else one DescribeKeyValueStore)."""
        if not puts and not deletes:
            return
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
                            f"{CONFLICT_RETRIES + 1} conflicting writes in a row; the next reconcile will retry"
                        ) from exc
                    etag = self._describe()["ETag"]
            report.puts += len(batch_puts)
            report.deletes += len(batch_deletes)

    def apply_revocations(self, entries: Iterable[RevokedEntry], now: datetime) -> SyncReport:
        """Put the serials of newly revoked, unexpired certificates (after a revocation)."""
        self._calls = {}
        report = SyncReport()
        puts = [{"Key": e.serial_number, "Value": kvs_value(e)} for e in entries if e.not_after >= now]
        self._write(puts, [], report)
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
        present = self.present_keys()
        desired = {
            e.serial_number: kvs_value(e) for e in self._store.list_revoked(self._ca, now, report.unreadable)
        }
        report.store_bytes = sum(entry_size(k, v) for k, v in desired.items())
        if report.store_bytes > self._max_bytes:
            raise KvsCapacityExceeded(
                f"{len(desired)} revoked serial numbers need {report.store_bytes} bytes; "
                f"the KeyValueStore holds {self._max_bytes}"
            )
        puts = [{"Key": k, "Value": v} for k, v in desired.items() if present.get(k) != v]
        unreadable = {u.serial_number for u in report.unreadable if u.serial_number}
        candidates = [k for k in present if k not in desired and k not in unreadable]
        keep = self._store.still_revoked(candidates, now) if candidates else set()
        deletes = [k for k in candidates if k not in keep]
        report.kept = len(present) - len(desired.keys() & present.keys()) - len(deletes)
        self._write(puts, deletes, report, etag)
        report.calls = dict(self._calls)
        return report
