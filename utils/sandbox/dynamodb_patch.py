"""Make moto's DynamoDB writes atomic, as DynamoDB's are.

DynamoDB applies each write (PutItem, UpdateItem with ``ADD``, a condition expression, a
transaction) atomically. moto runs concurrent requests in the callers' threads with no lock, so
two concurrent ``UpdateItem ... ADD crl_number :one`` can read the same old value and hand out the
same CRL number, something real DynamoDB never does. :func:`patch_moto_dynamodb` serialises
moto's write operations behind one lock; reads are untouched.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.responses import DynamoHandler

__all__ = ["WRITE_OPERATIONS", "patch_moto_dynamodb", "unpatch_moto_dynamodb"]

#: moto response methods that change items.
WRITE_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item",
                    "execute_statement")
_LOCK = threading.RLock()
_ORIGINALS: dict[str, Callable[..., Any]] = {}


def patch_moto_dynamodb() -> None:
    """Serialise moto's DynamoDB write operations (idempotent)."""
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


def unpatch_moto_dynamodb() -> None:
    """Restore moto's own methods (idempotent)."""
    for name, original in _ORIGINALS.items():
        setattr(DynamoHandler, name, original)
    _ORIGINALS.clear()
