"""One bootstrapped CA per test run, restored into each test's own moto instead of bootstrapped again.

The ``bootstrapped`` fixture needs a CA hierarchy created and published exactly as the bootstrap
custom resource does it (``kmsca.bootstrap.bootstrap_ca``: two KMS keys, CA records in the table,
certificates and CRLs in the buckets). The first test that asks bootstraps for real; what that left
in moto is kept (the two KMS keys with their key material, the table with its items and stream,
the buckets' objects), and every later test gets a copy of it in its own, freshly reset moto: the
same state, without the KMS signatures and the ~40 API calls. Each test owns its copy: what one
test changes (items, objects, key state) never reaches another.

This reads moto's backends (``moto.kms``, ``moto.dynamodb``, ``moto.s3`` models), so it is tied to
moto's internals; a moto upgrade that moves them fails :func:`restore` loudly, not silently.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.kms.models import kms_backends
from moto.s3.models import FakeKey, s3_backends

from tests.support.aws import REGION, CaResources


@dataclass(frozen=True)
class CaSnapshot:
    """What a bootstrap left in moto: the KMS key models (by ARN), the table model, and each
    bucket's objects (the state of moto's ``FakeKey``, body included, by object key)."""

    root_key: str
    issuing_key: str
    keys: dict[str, Any]
    table: Any
    objects: dict[str, dict[str, Any]]


def _kms() -> Any:
    return kms_backends[DEFAULT_ACCOUNT_ID][REGION]


def _dynamodb() -> Any:
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]


def _s3() -> Any:
    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


def _copy_key(key: Any) -> Any:
    """A copy of a moto KMS key model sharing only its private key (immutable; cryptography's keys
    cannot be deep-copied): state, grants, policy and rotations are the copy's own."""
    fresh = copy.copy(key)
    for name, value in vars(key).items():
        if name != "private_key":
            setattr(fresh, name, copy.deepcopy(value))
    return fresh


def take(resources: CaResources) -> CaSnapshot:
    """Copy what ``resources`` holds in moto now (call right after the bootstrap)."""
    kms = _kms()
    keys = {}
    for arn in (resources.root_key, resources.issuing_key):
        keys[arn] = _copy_key(kms.keys[arn.rsplit("/", 1)[1]])
    s3 = _s3()
    objects = {  # as state (with the body), not as FakeKey: moto closes every FakeKey's buffer on reset
        bucket: {name: copy.deepcopy(stored.__getstate__()) for name, stored in s3.buckets[bucket].keys.items()}
        for bucket in (resources.bucket, resources.internal_bucket)
    }
    table = copy.deepcopy(_dynamodb().tables[resources.table])
    return CaSnapshot(resources.root_key, resources.issuing_key, keys, table, objects)


def restore(snapshot: CaSnapshot) -> CaResources:
    """A :class:`CaResources` in the current (empty) moto holding a copy of ``snapshot``: the same
    key ARNs and key material, table items and stream records, and bucket objects."""
    resources = CaResources.__new__(CaResources)
    resources.connect()
    kms = _kms()
    for key in snapshot.keys.values():
        if key.id in kms.keys:
            raise AssertionError(f"KMS key {key.id} already exists: restore needs a fresh moto")
        kms.keys[key.id] = _copy_key(key)
    resources.root_key, resources.issuing_key = snapshot.root_key, snapshot.issuing_key
    dynamodb = _dynamodb()
    if resources.table in dynamodb.tables:
        raise AssertionError(f"table {resources.table} already exists: restore needs a fresh moto")
    dynamodb.tables[resources.table] = copy.deepcopy(snapshot.table)
    resources.create_buckets()
    s3 = _s3()
    for bucket, objects in snapshot.objects.items():
        for name, state in objects.items():
            stored: Any = FakeKey.__new__(FakeKey)
            stored.__setstate__(copy.deepcopy(state))
            s3.buckets[bucket].keys[name] = stored
    return resources
