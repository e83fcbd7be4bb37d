"""Make moto's S3 answer as AWS does where the project depends on it.

Two rules moto does not model:

- **A missing key without ``s3:ListBucket`` is 403** (below).
- **Every request sees whole objects** (Amazon S3 User Guide, "Amazon S3 data consistency
  model": updates to a single key are atomic; a GET that runs while another thread PUTs the same
  key returns the old data or the new data, never partial or corrupt data). moto keeps an
  object's bytes in a temporary file and closes the old one when a PUT replaces it, so a
  GetObject, HeadObject or ListObjects running in another thread at that moment fails with
  ``ValueError: I/O operation on closed file`` (seen with twenty concurrent CRL publications).
  :func:`patch_moto_s3` runs moto's S3 request handling (``S3Response._key_response`` and
  ``_bucket_response``) behind one re-entrant lock, so each request is atomic, as it is in S3.

HeadObject/GetObject of a missing key without ``s3:ListBucket``:

Amazon S3 API Reference, HeadObject and GetObject, section "Permissions": "If the object you
request doesn't exist, the error that Amazon S3 returns depends on whether you also have the
``s3:ListBucket`` permission": with it, **404 Not Found** (``NoSuchKey``); without it, **403
Forbidden** (``AccessDenied``), so that a caller who may not list the bucket cannot learn which
keys exist. moto always answers 404, so code that treats 404 as "not published yet" passes in the
sandbox and fails in AWS when its role lacks ``s3:ListBucket``.

moto does not evaluate IAM for this decision, so the patch asks a pluggable *checker*: a
callable that gets an :class:`S3RequestInfo` (operation, bucket, key, access key id, the
``Authorization`` header) and returns True when the caller may ``s3:ListBucket`` on the bucket.
Install it with :func:`patch_moto_s3` or :func:`set_list_bucket_checker` (the IAM emulation of
the sandbox provides one). Without a checker (IAM not enforced) moto's 404 is kept.

Shapes, as AWS sends them: HeadObject -> ``403`` with an empty body (a HEAD response has none;
SDKs report code ``403``, message ``Forbidden``); GetObject -> ``403`` with
``<Error><Code>AccessDenied</Code><Message>Access Denied</Message>...</Error>``. A missing bucket
(``NoSuchBucket``), a missing version (``versionId``) and a delete marker keep moto's answers.

:func:`patch_moto_s3` wraps ``moto.s3.responses.S3Response.head_object``, ``get_object``,
``_key_response`` and ``_bucket_response``; it works for ``moto.mock_aws`` and moto in server
mode alike and is idempotent.
:func:`unpatch_moto_s3` restores moto's methods and removes the checker.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.s3.exceptions import MissingKey, S3AccessDeniedError
from moto.s3.responses import S3Response

__all__ = [
    "ListBucketChecker",
    "S3RequestInfo",
    "access_key_id_of",
    "patch_moto_s3",
    "set_list_bucket_checker",
    "unpatch_moto_s3",
]

_ORIGINALS: dict[str, Callable[..., Any]] = {}
#: Held for the whole of one moto S3 request (see the module's docstring).
_REQUEST_LOCK = threading.RLock()

#: SigV4 header (``Credential=AKID/date/region/s3/aws4_request``) or query (``X-Amz-Credential``).
_SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
#: SigV2 header ``AWS AKID:signature``.
_SIGV2 = re.compile(r"^AWS ([^:\s]+):")


@dataclass(frozen=True)
class S3RequestInfo:
    """What a checker needs to decide whether the caller may ``s3:ListBucket`` on ``bucket``."""

    operation: str  #: "HeadObject" or "GetObject"
    bucket: str
    key: str
    access_key_id: str | None  #: from the Authorization header or a presigned URL; None if unsigned
    authorization: str | None  #: the raw Authorization header
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


ListBucketChecker = Callable[[S3RequestInfo], bool]

_checker: ListBucketChecker | None = None


def access_key_id_of(authorization: str | None, query: Mapping[str, Any] | None = None) -> str | None:
    """The access key id of a SigV4 / SigV2 Authorization header or a presigned URL's query."""
    if authorization:
        match = _SIGV4_CREDENTIAL.search(authorization) or _SIGV2.match(authorization)
        if match:
            return match.group(1)
    for name in ("X-Amz-Credential", "AWSAccessKeyId"):
        value = (query or {}).get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            return str(value).split("/", 1)[0]
    return None


def set_list_bucket_checker(checker: ListBucketChecker | None) -> None:
    """Install the checker (None: IAM not enforced, a missing key is 404 as in moto)."""
    global _checker
    _checker = checker


def _may_list(response: S3Response, operation: str, bucket: str, key: str) -> bool:
    """True when the caller may learn that ``key`` does not exist (or no checker is installed)."""
    checker = _checker
    if checker is None:
        return True
    headers = {str(name): str(value) for name, value in dict(response.headers or {}).items()}
    authorization = headers.get("Authorization") or headers.get("authorization")
    info = S3RequestInfo(
        operation=operation,
        bucket=bucket,
        key=key,
        access_key_id=access_key_id_of(authorization, getattr(response, "querystring", None)),
        authorization=authorization,
        headers=headers,
    )
    return bool(checker(info))


def _head_object(
    self: S3Response, bucket_name: str, query: dict[str, Any], key_name: str, headers: dict[str, Any]
) -> Any:
    """moto's HeadObject; a missing key is 403 (empty body) unless the caller may ListBucket."""
    status, response_headers, body = _ORIGINALS["head_object"](self, bucket_name, query, key_name, headers)
    missing = status == 404 and "x-amz-delete-marker" not in response_headers and not query.get("versionId")
    if missing and not _may_list(self, "HeadObject", bucket_name, key_name):
        return 403, {}, ""
    return status, response_headers, body


def _get_object(self: S3Response) -> Any:
    """moto's GetObject; a missing key is 403 AccessDenied unless the caller may ListBucket."""
    try:
        return _ORIGINALS["get_object"](self)
    except MissingKey:
        if not _may_list(self, "GetObject", self.bucket_name, self.parse_key_name()):
            raise S3AccessDeniedError() from None
        raise


def _atomic(name: str) -> Callable[..., Any]:
    """moto's ``S3Response.<name>``, run while holding the request lock."""

    def call(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        with _REQUEST_LOCK:
            return _ORIGINALS[name](self, *args, **kwargs)

    return functools.update_wrapper(call, getattr(S3Response, name))


_REPLACEMENTS: dict[str, Callable[..., Any]] = {
    "head_object": _head_object,
    "get_object": _get_object,
    "_key_response": _atomic("_key_response"),
    "_bucket_response": _atomic("_bucket_response"),
}


def patch_moto_s3(can_list_bucket: ListBucketChecker | None = None) -> None:
    """Apply the patch (idempotent; every moto use in the process).

    ``can_list_bucket``, when given, becomes the checker; None keeps the one installed (if any),
    so a second ``patch_moto_s3()`` does not drop the IAM emulation's checker.
    """
    for name, replacement in _REPLACEMENTS.items():
        current = getattr(S3Response, name)
        if current is replacement:
            continue
        _ORIGINALS.setdefault(name, current)
        setattr(S3Response, name, replacement)
    if can_list_bucket is not None:
        set_list_bucket_checker(can_list_bucket)


def unpatch_moto_s3() -> None:
    """Restore moto's own methods and remove the checker (for tests of the patch itself)."""
    for name, original in list(_ORIGINALS.items()):
        setattr(S3Response, name, original)
        del _ORIGINALS[name]
    set_list_bucket_checker(None)
