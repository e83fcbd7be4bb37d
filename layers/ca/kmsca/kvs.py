"""Mirror of the issuing CA's revoked, unexpired certificates in a CloudFront KeyValueStore.

A connection function looks the viewer certificate's serial number up at the edge
(``kvs.exists``) and denies the connection when it is there. Key: canonical serial number
(:mod:`kmsca.serial`); value: ``"<revoked_at> <reason>"`` (at most 41 bytes).

- Incremental (table stream, after each revocation): the revocations come from the stream
  records themselves (never the eventually consistent index), one ``DescribeKeyValueStore`` for the ETag,
  then ``UpdateKeys`` with the new keys: 2 calls for one revocation.
- Reconcile (schedule): ``DescribeKeyValueStore``, ``ListKeys`` pages, the difference with the
  inventory, applied as ``UpdateKeys`` batches of at most 50 keys chained by ETag. Expired
  certificates are deleted, so the store stays far below its 5 MB limit.

Every write carries ``IfMatch``; a ``ConflictException`` (someone else wrote) re-reads the ETag
and retries, at most :data:`CONFLICT_RETRIES` times; then :class:`KvsConflict` is raised and
nothing is lost: the next reconcile computes the difference again.

Limits (CloudFront Developer Guide, KeyValueStore quotas): 50 keys or 3 MB per UpdateKeys,
key 512 bytes, value 1 KB, store 5 MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .records import RevokedEntry, iso
from .store import CertificateStore

MAX_KEYS_PER_UPDATE = 50
MAX_STORE_BYTES = 5 * 1024 * 1024
CONFLICT_RETRIES = 5
LIST_PAGE_SIZE = 50


class KvsConflict(Exception):
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
        self._calls[operation] = self._calls.get(operation, 0) + 1
        return getattr(self._client, operation)(KvsARN=self._arn, **kwargs)

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

    def reconcile(self, now: datetime) -> SyncReport:
        """Make the store equal to the inventory's revoked, unexpired certificates.

        Raises:
            KvsCapacityExceeded: the desired content is larger than the store holds; nothing written.
            KvsConflict: see the module docstring.
        """
        self._calls = {}
        report = SyncReport()
        desired = {e.serial_number: kvs_value(e) for e in self._store.list_revoked(self._ca, now)}
        report.store_bytes = sum(entry_size(k, v) for k, v in desired.items())
        if report.store_bytes > self._max_bytes:
            raise KvsCapacityExceeded(
                f"{len(desired)} revoked serial numbers need {report.store_bytes} bytes; "
                f"the KeyValueStore holds {self._max_bytes}"
            )
        etag = self._describe()["ETag"]
        present = self.present_keys()
        puts = [{"Key": k, "Value": v} for k, v in desired.items() if present.get(k) != v]
        deletes = [k for k in present if k not in desired]
        self._write(puts, deletes, report, etag)
        report.calls = dict(self._calls)
        return report
