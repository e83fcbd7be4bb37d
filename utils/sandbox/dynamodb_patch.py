"""Make moto's DynamoDB behave like DynamoDB where the project depends on it.

Two rules from the Amazon DynamoDB Developer Guide that moto does not model:

- **Writes are atomic** ("Read consistency" / "Atomic counters"): DynamoDB applies each write
  (PutItem, UpdateItem with ``ADD``, a condition expression, a transaction) atomically. moto runs
  concurrent requests in the callers' threads with no lock, so two concurrent ``UpdateItem ... ADD
  crl_number :one`` can read the same old value and hand out the same CRL number, something real
  DynamoDB never does. :func:`patch_moto_dynamodb` serialises moto's write operations behind one
  lock; reads are untouched.
- **Global secondary indexes are eventually consistent** ("Using Global Secondary Indexes in
  DynamoDB", section "Reading data from a Global Secondary Index"): a write reaches a GSI
  asynchronously, so a Query or Scan on a GSI right after a write may not see it, and
  ``ConsistentRead=True`` on a GSI is refused (moto already refuses it with
  ``ValidationException: Consistent reads are not supported on global secondary indexes``).
  moto updates its indexes synchronously. With :func:`set_gsi_lag` (or the :func:`gsi_lag`
  context manager) set to ``seconds > 0``, every write is remembered with the item image it
  replaced, and a GSI Query/Scan sees each item as it was ``seconds`` ago: an item written within
  the window appears with its previous image, or not at all if it did not exist before (a
  revocation that sets the sparse-index key ``revoked_ca`` is not in ``RevokedByCa`` yet). Base
  table reads (GetItem, Query/Scan without ``IndexName``) stay strongly consistent. The default lag
  is 0: no bookkeeping, moto's behaviour.

Both parts are installed by :func:`patch_moto_dynamodb` (idempotent) and removed by
:func:`unpatch_moto_dynamodb`; they work for ``moto.mock_aws`` and moto in server mode alike.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

__all__ = [
    "WRITE_OPERATIONS",
    "get_gsi_lag",
    "gsi_lag",
    "patch_moto_dynamodb",
    "set_gsi_lag",
    "unpatch_moto_dynamodb",
]

#: moto response methods that change items.
WRITE_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "execute_statement",
)
_LOCK = threading.RLock()
_ORIGINALS: dict[str, Callable[..., Any]] = {}

# Eventually consistent GSIs ------------------------------------------------------------------

#: Attribute of a moto ``Table`` holding its pending writes (travels with the table when moto
#: deep-copies it for a transaction).
_PENDING_ATTRIBUTE = "_sandbox_gsi_pending"
_ItemKey = tuple[DynamoType, DynamoType | None]
_lag_seconds = 0.0
_MODEL_ORIGINALS: dict[tuple[type, str], Callable[..., Any]] = {}


@dataclass(frozen=True)
class _PendingWrite:
    """A write the GSIs have not seen yet: when it happened and the item image it replaced."""

    at: float
    before: Item | None


def set_gsi_lag(seconds: float) -> None:
    """Delay, in seconds, before a write becomes visible to GSI Query/Scan (0 = off, the default).

    Takes effect for writes made from now on; needs :func:`patch_moto_dynamodb`.
    """
    global _lag_seconds
    if seconds < 0:
        raise ValueError(f"GSI lag must be >= 0 seconds, got {seconds}")
    _lag_seconds = float(seconds)


def get_gsi_lag() -> float:
    """The current GSI lag in seconds."""
    return _lag_seconds


@contextlib.contextmanager
def gsi_lag(seconds: float) -> Iterator[None]:
    """Set the GSI lag for the duration of a ``with`` block, then restore the previous value."""
    previous = _lag_seconds
    set_gsi_lag(seconds)
    try:
        yield
    finally:
        set_gsi_lag(previous)


def _pending(table: Table) -> dict[_ItemKey, list[_PendingWrite]]:
    pending: dict[_ItemKey, list[_PendingWrite]] = table.__dict__.setdefault(_PENDING_ATTRIBUTE, {})
    return pending


def _remember(table: Table, key: _ItemKey, before: Item | None) -> None:
    """Record a successful write of ``key`` whose previous image was ``before``."""
    if _lag_seconds <= 0:
        return
    with _LOCK:
        _pending(table).setdefault(key, []).append(_PendingWrite(time.monotonic(), before))


def _key_of(table: Table, attrs: dict[str, Any]) -> _ItemKey | None:
    """(hash, range) of an item or key in wire form, or None when a key attribute is missing."""
    try:
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, TypeError):
        return None
    return hash_value, range_value


def _put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    key = _key_of(self, item_attrs)
    before = self.get_item(*key) if key is not None and _lag_seconds > 0 else None
    item: Item = _MODEL_ORIGINALS[(Table, "put_item")](self, item_attrs, *args, **kwargs)
    if key is not None:
        _remember(self, key, before)
    return item


def _delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    item: Item | None = _MODEL_ORIGINALS[(Table, "delete_item")](self, hash_key, range_key)
    if item is not None:
        _remember(self, (hash_key, range_key), item)
    return item


def _update_item(self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    """UpdateItem changes moto's item in place: keep a copy of the image it replaces."""
    table = self.get_table(table_name)
    item_key = _key_of(table, key) if isinstance(key, dict) else None
    before = None
    if item_key is not None and _lag_seconds > 0:
        before = copy.deepcopy(table.get_item(*item_key))
    item: Item = _MODEL_ORIGINALS[(DynamoDBBackend, "update_item")](self, table_name, key, *args, **kwargs)
    if item_key is not None:
        _remember(table, item_key, before)
    return item


def _lagged_items(table: Table) -> Any | None:
    """``table.items`` as the GSIs see it now, or None when every write has reached them."""
    pending = table.__dict__.get(_PENDING_ATTRIBUTE)
    if not pending:
        return None
    horizon = time.monotonic() - _lag_seconds
    with _LOCK:
        unseen: dict[_ItemKey, Item | None] = {}
        for key, writes in list(pending.items()):
            waiting = [write for write in writes if write.at > horizon]
            if waiting:
                pending[key] = waiting
                unseen[key] = waiting[0].before
            else:
                del pending[key]
        if not unseen:
            return None
        items: Any = defaultdict(dict)
        for hash_value, entry in table.items.items():
            items[hash_value] = dict(entry) if table.range_key_attr else entry
    for (hash_value, range_value), before in unseen.items():
        if table.range_key_attr:
            if before is None:
                items[hash_value].pop(range_value, None)
            else:
                items[hash_value][range_value] = before
        elif before is None:
            items.pop(hash_value, None)
        else:
            items[hash_value] = before
    return items


def _gsi_read(name: str) -> Callable[..., Any]:
    """Wrap ``Table.query``/``Table.scan``: a GSI read runs on the lagged view of the items."""
    original = getattr(Table, name)
    signature = inspect.signature(original)

    @functools.wraps(original)
    def read(self: Table, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        index_name = bound.arguments.get("index_name")
        if _lag_seconds > 0 and index_name and any(i.name == index_name for i in self.global_indexes or []):
            items = _lagged_items(self)
            if items is not None:
                view = copy.copy(self)
                view.items = items
                return _MODEL_ORIGINALS[(Table, name)](view, *args, **kwargs)
        return _MODEL_ORIGINALS[(Table, name)](self, *args, **kwargs)

    return read


def _model_targets() -> dict[tuple[type, str], Callable[..., Any]]:
    return {
        (Table, "put_item"): _put_item,
        (Table, "delete_item"): _delete_item,
        (DynamoDBBackend, "update_item"): _update_item,
        (Table, "query"): _gsi_read("query"),
        (Table, "scan"): _gsi_read("scan"),
    }


# Patch / unpatch -----------------------------------------------------------------------------


def patch_moto_dynamodb() -> None:
    """Serialise moto's DynamoDB writes and make GSI reads lag when asked (idempotent)."""
    for name in WRITE_OPERATIONS:
        if name in _ORIGINALS:
            continue
        original = getattr(DynamoHandler, name)
        _ORIGINALS[name] = original

        @functools.wraps(original)
        def atomic(self: DynamoHandler, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with _LOCK:
                return _original(self, *args, **kwargs)

        setattr(DynamoHandler, name, atomic)
    if _MODEL_ORIGINALS:
        return
    for (owner, name), replacement in _model_targets().items():
        _MODEL_ORIGINALS[(owner, name)] = getattr(owner, name)
        setattr(owner, name, replacement)


def unpatch_moto_dynamodb() -> None:
    """Restore moto's own methods (idempotent)."""
    for name, original in _ORIGINALS.items():
        setattr(DynamoHandler, name, original)
    _ORIGINALS.clear()
    for (owner, name), original in _MODEL_ORIGINALS.items():
        setattr(owner, name, original)
    _MODEL_ORIGINALS.clear()
