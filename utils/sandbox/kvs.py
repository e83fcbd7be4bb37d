"""Emulation of the CloudFront KeyValueStore data plane (``cloudfront-keyvaluestore``).

moto emulates the KVS control plane (``cloudfront.create_key_value_store``) but not the data
plane the sync function and the connection function use. :class:`KvsEmulator` answers the six
data-plane operations with AWS's semantics:

- ``DescribeKeyValueStore`` (ETag, ItemCount, TotalSizeInBytes, KvsARN, Created, LastModified,
  Status), ``GetKey``, ``ListKeys`` (keys in ascending order; ``MaxResults`` 1-50, ``NextToken``),
  ``PutKey``, ``DeleteKey``, ``UpdateKeys`` (all or nothing);
- every write needs ``IfMatch`` equal to the current ETag, else ``ConflictException``; every
  successful write returns a new ETag;
- limits (CloudFront Developer Guide, KeyValueStore quotas): key 1-512 bytes, value at most
  1 KB, ``UpdateKeys`` at most 50 keys (puts and deletes together) and 3 MB ->
  ``ValidationException``; a store above 5 MB -> ``ServiceQuotaExceededException``, nothing
  written; an unknown ARN or key -> ``ResourceNotFoundException``.

A store exists when moto's CloudFront backend has a KeyValueStore with that ARN (so a store
created with ``cloudfront.create_key_value_store`` under ``mock_aws`` or through the sandbox is
usable at once) or when it was registered with :meth:`KvsEmulator.create_store`.

How requests reach it: :func:`install_kvs_emulator` hooks botocore's ``before-send`` event for
the ``cloudfront-keyvaluestore`` service in this process. The request is built and signed
(SigV4A, so ``awscrt`` must be installed, as in Lambda) exactly as against AWS; the hook answers
it instead of the network and the client parses the answer normally. The hook is added to
botocore's built-in handlers, so every session and client created after installation has it,
including the clients Lambda handlers create at import; the boto3 default session, if it already
exists, gets it too. Clients created *before* installation are not hooked.

The sandbox's HTTP endpoint also answers data-plane requests (``/key-value-stores/...``) with the
same emulator, for clients in other processes: see :func:`redirect_kvs_clients`.

Example (tests)::

    with mock_aws():
        emulator = install_kvs_emulator()
        arn = boto3.client("cloudfront").create_key_value_store(Name="s")["KeyValueStore"]["ARN"]
        kvs = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
        etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]
        kvs.update_keys(KvsARN=arn, IfMatch=etag, Puts=[{"Key": "0a", "Value": "v"}])
        emulator.inject_conflicts(arn, 3)      # the next 3 UpdateKeys fail with ConflictException
        assert emulator.items(arn) == {"0a": "v"}
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import botocore.handlers
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

__all__ = [
    "MAX_KEYS_PER_UPDATE",
    "MAX_KEY_BYTES",
    "MAX_LIST_RESULTS",
    "MAX_STORE_BYTES",
    "MAX_UPDATE_BYTES",
    "MAX_VALUE_BYTES",
    "KvsEmulator",
    "KvsError",
    "install_kvs_emulator",
    "installed_kvs_emulator",
    "is_kvs_request",
    "kvs_operation",
    "redirect_kvs_clients",
    "uninstall_kvs_emulator",
]

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 1024
MAX_KEYS_PER_UPDATE = 50
MAX_UPDATE_BYTES = 3 * 1024 * 1024
MAX_STORE_BYTES = 5 * 1024 * 1024
MAX_LIST_RESULTS = 50

SERVICE = "cloudfront-keyvaluestore"
_BEFORE_SEND = f"before-send.{SERVICE}"
_BEFORE_SIGN = f"before-sign.{SERVICE}"
_PATH_PREFIX = "/key-value-stores/"


class KvsError(Exception):
    """A data-plane error as AWS returns it: ``code`` (e.g. "ConflictException"), HTTP ``status``."""

    STATUS = {
        "ValidationException": 400,
        "AccessDeniedException": 403,
        "ResourceNotFoundException": 404,
        "ConflictException": 409,
        "ServiceQuotaExceededException": 402,
        "UnrecognizedClientException": 403,
        "InternalServerException": 500,
    }

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = self.STATUS.get(code, 400)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _new_etag() -> str:
    return "KV" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))


@dataclass
class _Store:
    arn: str
    created: datetime
    items: dict[str, str] = field(default_factory=dict)
    etag: str = field(default_factory=_new_etag)
    last_modified: datetime | None = None
    injected: dict[str, int] = field(default_factory=dict)  # operation -> conflicts still to inject
    origin: Any = None  # moto's KeyValueStore object, when the store is moto's

    @property
    def size(self) -> int:
        return sum(_size(k) + _size(v) for k, v in self.items.items())

    def stats(self) -> dict[str, Any]:
        return {"ItemCount": len(self.items), "TotalSizeInBytes": self.size}


def _moto_store(arn: str) -> Any:
    """The KeyValueStore object moto's CloudFront backend holds under this ARN, else None."""
    try:
        from moto.cloudfront.models import cloudfront_backends
    except ImportError:  # pragma: no cover - moto is a test/sandbox dependency
        return None
    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "cloudfront":
        return None
    partition, account = parts[1], parts[4]
    try:
        backend = cloudfront_backends[account][partition]
        stores = list(backend.key_value_stores.values())
    except Exception:  # no backend, no store
        return None
    return next((store for store in stores if store.arn == arn), None)


def _created(moto_store: Any) -> datetime:
    created = getattr(moto_store, "last_modified_time", None)
    if isinstance(created, datetime):
        return created if created.tzinfo else created.replace(tzinfo=UTC)
    return datetime.now(UTC)


class KvsEmulator:
    """State of every emulated KeyValueStore (by ARN) and the operations on it. Thread-safe.

    Public helpers for tests and the demo: :meth:`create_store`, :meth:`items`, :meth:`etag`,
    :meth:`inject_conflicts`, :meth:`call_counts`, :meth:`reset`, :meth:`handle` (one HTTP
    request -> status, headers, body).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._stores: dict[str, _Store] = {}
        self._registered: set[str] = set()
        self._calls: Counter[tuple[str, str]] = Counter()
        #: Authorization header of the last request answered over HTTP or botocore (SigV4A:
        #: "AWS4-ECDSA-P256-SHA256 Credential=...").
        self.last_authorization: str | None = None
        #: Set by a running sandbox: (IAM action, KvsARN, request headers) -> None when the
        #: request's credentials may, else (error code, message). Checked for the requests this
        #: process's clients send (:meth:`before_send`); the sandbox's HTTP front checks its own.
        self.authorizer: Callable[[str, str, Mapping[str, str]], tuple[str, str] | None] | None = None

    # -- helpers for tests and the demo ------------------------------------------------------------

    def create_store(self, arn: str, items: Mapping[str, str] | None = None) -> str:
        """Make ``arn`` a store (needed only when moto's CloudFront backend does not know it) and
        seed it with ``items`` (an import source; replaces nothing else). Returns the ARN.

        Raises:
            KvsError: an item breaks a limit (ValidationException) or the seed is above 5 MB
                (ServiceQuotaExceededException); nothing is seeded then.
        """
        with self._lock:
            if _moto_store(arn) is None:
                self._registered.add(arn)
                self._stores.setdefault(arn, _Store(arn, datetime.now(UTC)))
            store = self._store(arn)
            if items:
                self._check_items(dict(items).items())
                self._commit(store, {**store.items, **items})
            return arn

    def items(self, arn: str) -> dict[str, str]:
        """A copy of the store's keys and values (sorted by key). KeyError for an unknown ARN."""
        with self._lock:
            store = self._find(arn)
            if store is None:
                raise KeyError(arn)
            return dict(sorted(store.items.items()))

    def etag(self, arn: str) -> str:
        """The store's current ETag. KeyError for an unknown ARN."""
        with self._lock:
            store = self._find(arn)
            if store is None:
                raise KeyError(arn)
            return store.etag

    def stores(self) -> list[str]:
        """ARNs of the stores that exist (moto's plus registered ones) and were touched or registered."""
        with self._lock:
            return [arn for arn in self._stores if self._find(arn) is not None]

    def inject_conflicts(self, arn: str, count: int, operation: str = "UpdateKeys") -> None:
        """Make the next ``count`` calls of ``operation`` (UpdateKeys, PutKey or DeleteKey) on ``arn``
        fail with ``ConflictException``, as if another writer got in first: each injected conflict
        changes the ETag (the content stays). ``count`` 0 cancels. KeyError for an unknown ARN."""
        if operation not in ("UpdateKeys", "PutKey", "DeleteKey"):
            raise ValueError(f"conflicts can be injected on writes only, not {operation}")
        with self._lock:
            store = self._find(arn)
            if store is None:
                raise KeyError(arn)
            store.injected[operation] = max(0, int(count))

    def pending_conflicts(self, arn: str, operation: str = "UpdateKeys") -> int:
        """Injected conflicts not consumed yet."""
        with self._lock:
            store = self._find(arn)
            return store.injected.get(operation, 0) if store else 0

    def call_counts(self, arn: str | None = None) -> dict[str, int]:
        """Operation name -> calls answered (all stores, or one), errors included."""
        with self._lock:
            counts: Counter[str] = Counter()
            for (operation, target), n in self._calls.items():
                if arn is None or target == arn:
                    counts[operation] += n
            return dict(counts)

    def reset_call_counts(self) -> None:
        with self._lock:
            self._calls.clear()

    def reset(self) -> None:
        """Forget every store, registration, injected conflict and call count."""
        with self._lock:
            self._stores.clear()
            self._registered.clear()
            self._calls.clear()

    # -- operations (Python-level; raise KvsError) --------------------------------------------------

    def _find(self, arn: str) -> _Store | None:
        """The store's state if the store exists (moto or registered); created on first use."""
        store = self._stores.get(arn)
        if arn in self._registered:
            return store
        origin = _moto_store(arn)
        if origin is None:
            self._stores.pop(arn, None)  # deleted from moto, or moto was reset
            return None
        if store is None or store.origin is not origin:
            store = self._stores[arn] = _Store(arn, _created(origin), origin=origin)
        return store

    def _store(self, arn: str) -> _Store:
        store = self._find(arn)
        if store is None:
            raise KvsError("ResourceNotFoundException", f"Key value store {arn} not found")
        return store

    @staticmethod
    def _check_key(key: Any) -> str:
        if not isinstance(key, str) or not key:
            raise KvsError("ValidationException", "Key must be a non-empty string")
        if _size(key) > MAX_KEY_BYTES:
            raise KvsError(
                "ValidationException", f"Key size {_size(key)} bytes exceeds the maximum of {MAX_KEY_BYTES} bytes"
            )
        return key

    @classmethod
    def _check_items(cls, items: Iterable[tuple[Any, Any]]) -> None:
        for key, value in items:
            cls._check_key(key)
            if not isinstance(value, str):
                raise KvsError("ValidationException", f"Value of key {key!r} must be a string")
            if _size(value) > MAX_VALUE_BYTES:
                raise KvsError(
                    "ValidationException",
                    f"Value size {_size(value)} bytes of key {key!r} exceeds the maximum of {MAX_VALUE_BYTES} bytes",
                )

    def _check_write(self, store: _Store, operation: str, if_match: str | None) -> None:
        if not if_match:
            raise KvsError("ValidationException", "If-Match header (the store's current ETag) is required")
        if store.injected.get(operation, 0) > 0:
            store.injected[operation] -= 1
            store.etag = _new_etag()
            raise KvsError("ConflictException", "Pre-condition failed: the key value store was modified (injected)")
        if if_match != store.etag:
            raise KvsError(
                "ConflictException", f"Pre-condition failed: ETag {if_match} does not match the current {store.etag}"
            )

    @staticmethod
    def _commit(store: _Store, items: dict[str, str]) -> dict[str, Any]:
        if sum(_size(k) + _size(v) for k, v in items.items()) > MAX_STORE_BYTES:
            raise KvsError(
                "ServiceQuotaExceededException",
                f"The key value store would exceed its maximum size of {MAX_STORE_BYTES} bytes",
            )
        store.items = items
        store.etag = _new_etag()
        store.last_modified = datetime.now(UTC)
        return {**store.stats(), "ETag": store.etag}

    def describe_key_value_store(self, arn: str) -> dict[str, Any]:
        with self._lock:
            store = self._store(arn)
            result = {
                **store.stats(),
                "KvsARN": arn,
                "Created": store.created,
                "ETag": store.etag,
                "Status": "READY",
            }
            if store.last_modified is not None:
                result["LastModified"] = store.last_modified
            return result

    def get_key(self, arn: str, key: str) -> dict[str, Any]:
        with self._lock:
            store = self._store(arn)
            self._check_key(key)
            if key not in store.items:
                raise KvsError("ResourceNotFoundException", f"Key {key} not found")
            return {"Key": key, "Value": store.items[key], **store.stats()}

    def list_keys(self, arn: str, max_results: int | None = None, next_token: str | None = None) -> dict[str, Any]:
        with self._lock:
            store = self._store(arn)
            limit = MAX_LIST_RESULTS if max_results is None else max_results
            if not 1 <= limit <= MAX_LIST_RESULTS:
                raise KvsError(
                    "ValidationException", f"MaxResults must be between 1 and {MAX_LIST_RESULTS}, got {limit}"
                )
            after = ""
            if next_token:
                try:
                    token = json.loads(base64.urlsafe_b64decode(next_token.encode()))
                    if token["arn"] != arn:
                        raise ValueError("token of another store")
                    after = str(token["after"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise KvsError("ValidationException", "Invalid NextToken") from exc
            keys = sorted(k for k in store.items if k > after)
            page = keys[:limit]
            result: dict[str, Any] = {"Items": [{"Key": k, "Value": store.items[k]} for k in page]}
            if len(keys) > limit:
                token_doc = json.dumps({"arn": arn, "after": page[-1]}).encode()
                result["NextToken"] = base64.urlsafe_b64encode(token_doc).decode()
            return result

    def put_key(self, arn: str, key: str, value: str, if_match: str | None) -> dict[str, Any]:
        with self._lock:
            store = self._store(arn)
            self._check_items([(key, value)])
            self._check_write(store, "PutKey", if_match)
            return self._commit(store, {**store.items, key: value})

    def delete_key(self, arn: str, key: str, if_match: str | None) -> dict[str, Any]:
        with self._lock:
            store = self._store(arn)
            self._check_key(key)
            self._check_write(store, "DeleteKey", if_match)
            if key not in store.items:
                raise KvsError("ResourceNotFoundException", f"Key {key} not found")
            items = dict(store.items)
            del items[key]
            return self._commit(store, items)

    def update_keys(
        self,
        arn: str,
        if_match: str | None,
        puts: list[Mapping[str, Any]] | None = None,
        deletes: list[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """All or nothing: any invalid item, a stale ETag or the store limit -> nothing changes.
        Deleting a key that is not there is not an error."""
        with self._lock:
            store = self._store(arn)
            puts, deletes = list(puts or []), list(deletes or [])
            if not puts and not deletes:
                raise KvsError("ValidationException", "UpdateKeys needs at least one item in Puts or Deletes")
            if len(puts) + len(deletes) > MAX_KEYS_PER_UPDATE:
                raise KvsError(
                    "ValidationException",
                    f"UpdateKeys accepts at most {MAX_KEYS_PER_UPDATE} keys (Puts and Deletes together), "
                    f"got {len(puts) + len(deletes)}",
                )
            try:
                put_items = [(p["Key"], p["Value"]) for p in puts]
                delete_keys = [d["Key"] for d in deletes]
            except (KeyError, TypeError) as exc:
                raise KvsError("ValidationException", "Every Put needs Key and Value, every Delete a Key") from exc
            self._check_items(put_items)
            for key in delete_keys:
                self._check_key(key)
            every_key = [k for k, _ in put_items] + delete_keys
            duplicates = sorted({k for k in every_key if every_key.count(k) > 1})
            if duplicates:
                raise KvsError("ValidationException", f"Keys appear more than once in one request: {duplicates[:5]}")
            payload = sum(_size(k) + _size(v) for k, v in put_items) + sum(_size(k) for k in delete_keys)
            if payload > MAX_UPDATE_BYTES:
                raise KvsError(
                    "ValidationException",
                    f"UpdateKeys payload of {payload} bytes exceeds the maximum of {MAX_UPDATE_BYTES} bytes",
                )
            self._check_write(store, "UpdateKeys", if_match)
            items = dict(store.items)
            for key in delete_keys:
                items.pop(key, None)
            items.update(put_items)
            return self._commit(store, items)

    # -- HTTP (REST-JSON) ---------------------------------------------------------------------------

    def handle(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one data-plane HTTP request (any host; the path and query matter)."""
        request_id = str(uuid.uuid4())
        parts = urlsplit(url)
        raw_segments = parts.path[len(_PATH_PREFIX) :].split("/") if parts.path.startswith(_PATH_PREFIX) else []
        segments = [unquote(s) for s in raw_segments]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        lowered = {
            (k.decode() if isinstance(k, bytes) else k).lower(): v.decode() if isinstance(v, bytes) else v
            for k, v in headers.items()
        }
        if_match = lowered.get("if-match")
        self.last_authorization = lowered.get("authorization")
        arn = segments[0] if segments else ""
        operation = "Unknown"
        try:
            if len(segments) == 1 and method == "GET":
                operation = "DescribeKeyValueStore"
                result = self._count(operation, arn, lambda: self.describe_key_value_store(arn))
            elif len(segments) == 2 and segments[1] == "keys" and method == "GET":
                operation = "ListKeys"
                max_results = query.get("MaxResults")
                try:
                    limit = int(max_results) if max_results is not None else None
                except ValueError as exc:
                    raise KvsError("ValidationException", f"MaxResults {max_results!r} is not a number") from exc
                result = self._count(operation, arn, lambda: self.list_keys(arn, limit, query.get("NextToken")))
            elif len(segments) == 2 and segments[1] == "keys" and method == "POST":
                operation = "UpdateKeys"
                doc = _json_body(body)
                result = self._count(
                    operation, arn, lambda: self.update_keys(arn, if_match, doc.get("Puts"), doc.get("Deletes"))
                )
            elif len(segments) == 3 and segments[1] == "keys" and method in ("GET", "PUT", "DELETE"):
                key = segments[2]
                if method == "GET":
                    operation = "GetKey"
                    result = self._count(operation, arn, lambda: self.get_key(arn, key))
                elif method == "PUT":
                    operation = "PutKey"
                    value = str(_json_body(body).get("Value", ""))
                    result = self._count(operation, arn, lambda: self.put_key(arn, key, value, if_match))
                else:
                    operation = "DeleteKey"
                    result = self._count(operation, arn, lambda: self.delete_key(arn, key, if_match))
            else:
                raise KvsError("ValidationException", f"Unknown operation {method} {parts.path}")
        except KvsError as exc:
            error = json.dumps({"Message": exc.message}).encode()
            return (
                exc.status,
                {
                    "Content-Type": "application/json",
                    "x-amzn-ErrorType": exc.code,
                    "x-amzn-RequestId": request_id,
                },
                error,
            )
        response_headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id}
        etag = result.pop("ETag", None)
        if etag is not None:
            response_headers["ETag"] = etag
        return 200, response_headers, json.dumps(result, default=_json_default).encode()

    def _count(self, operation: str, arn: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            self._calls[(operation, arn)] += 1
        return call()

    def before_send(self, request: Any, **kwargs: Any) -> AWSResponse:
        """botocore ``before-send`` handler: the emulator's answer as an HTTP response."""
        body = request.body
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:  # a file-like body
            data = body.read()
        request_headers = {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
        authorizer = self.authorizer
        arn, operation = kvs_operation(request.method, urlsplit(request.url).path)
        denied = authorizer(f"{SERVICE}:{operation}", arn, request_headers) if authorizer else None
        if denied is not None:
            error = KvsError(*denied)
            status, headers = error.status, {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
            payload = json.dumps({"Message": error.message}).encode()
        else:
            status, headers, payload = self.handle(request.method, request.url, request_headers, data)
        http_headers = HTTPHeaders()
        for key, value in headers.items():
            http_headers[key] = value
        http_headers["Content-Length"] = str(len(payload))
        return AWSResponse(request.url, status, http_headers, _RawBody(payload))


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise KvsError("ValidationException", f"Request body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise KvsError("ValidationException", "Request body must be a JSON object")
    return doc


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()  # rest-json timestamps: epoch seconds
    raise TypeError(f"cannot encode {type(value).__name__}")


class _RawBody:
    """What ``AWSResponse`` reads: ``stream()`` yields the body."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **kwargs: Any) -> Any:
        if self._data:
            yield self._data

    def read(self, amt: int | None = None) -> bytes:
        data, self._data = self._data, b""
        return data


# ---------------------------------------------------------------------------------------------
# Installation in this process
# ---------------------------------------------------------------------------------------------

_install_lock = threading.Lock()
_installed: KvsEmulator | None = None
_hooked = False


def _dispatch(request: Any, **kwargs: Any) -> AWSResponse | None:
    """The handler every botocore session carries once installed; inert after uninstall.

    A session can carry it twice (built-in handler and the default session's registration):
    each request is answered once, the second call sees the mark and passes.
    """
    emulator = _installed
    if emulator is None or getattr(request, "_sandbox_kvs_answered", False):
        return None
    request._sandbox_kvs_answered = True
    return emulator.before_send(request, **kwargs)


def install_kvs_emulator(emulator: KvsEmulator | None = None) -> KvsEmulator:
    """Answer every ``cloudfront-keyvaluestore`` request of this process with an emulator.

    Idempotent: returns the installed emulator (``emulator`` is used only when none is
    installed yet). Sessions and clients created afterwards are hooked (botocore's built-in
    handlers); so is boto3's default session if it exists already.
    """
    global _installed, _hooked
    with _install_lock:
        if _installed is None:
            _installed = emulator or KvsEmulator()
        if not _hooked:
            botocore.handlers.BUILTIN_HANDLERS.append((_BEFORE_SEND, _dispatch))
            _hooked = True
        import boto3

        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.register(_BEFORE_SEND, _dispatch, unique_id="sandbox-kvs-emulator")
        return _installed


def uninstall_kvs_emulator() -> None:
    """Stop answering: ``cloudfront-keyvaluestore`` requests go to the network again. Idempotent."""
    global _installed
    with _install_lock:
        _installed = None


def installed_kvs_emulator() -> KvsEmulator | None:
    """The emulator answering in this process, or None."""
    return _installed


_OPERATIONS = {
    ("GET", ""): "DescribeKeyValueStore",
    ("GET", "keys"): "ListKeys",
    ("POST", "keys"): "UpdateKeys",
    ("GET", "key"): "GetKey",
    ("PUT", "key"): "PutKey",
    ("DELETE", "key"): "DeleteKey",
}


def kvs_operation(method: str, raw_path: str) -> tuple[str, str]:
    """(KvsARN, operation name) of a data-plane request ``/key-value-stores/{arn}[/keys[/{key}]]``."""
    parts = raw_path.split("?", 1)[0].strip("/").split("/")
    arn = unquote(parts[1]) if len(parts) > 1 else ""
    kind = "" if len(parts) <= 2 else ("keys" if len(parts) == 3 else "key")
    return arn, _OPERATIONS.get((method, kind), "Unknown")


def is_kvs_request(path: str, authorization: str) -> bool:
    """Whether an HTTP request (path, Authorization header) is a KVS data-plane call."""
    return path.startswith(_PATH_PREFIX) and f"/{SERVICE}/aws4_request" in authorization


def redirect_kvs_clients(endpoint_url: str, session: Any = None) -> None:
    """Send ``cloudfront-keyvaluestore`` requests of ``session`` (a boto3 or botocore session; the
    boto3 default session when None) to a running sandbox at ``endpoint_url``.

    For a process other than the sandbox's: with a custom endpoint, botocore's endpoint rules put
    the account id in front of the host (``http://123456789012.127.0.0.1:4566``), which does not
    resolve. This ``before-sign`` hook puts the sandbox's host back (before signing, so the
    signature covers the real host). Clients created from the session afterwards are affected.
    """
    target = urlsplit(endpoint_url)

    def rewrite(request: Any, **kwargs: Any) -> None:
        parts = urlsplit(request.url)
        request.url = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))

    if session is None:
        import boto3

        session = boto3._get_default_session()
    events = session.events if hasattr(session, "events") else session.get_component("event_emitter")
    events.register(_BEFORE_SIGN, rewrite, unique_id=f"sandbox-kvs-redirect-{quote(endpoint_url)}")
