"""The root-signed OCSP responses about the issuing CA, read from the public bucket
(``s3:GetObject`` of ``ocsp/root-signed/...``): the S3 adapter of :mod:`kmsca.responder`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .aws_errors import aws_call_failed, aws_error_code


class S3PresignedSource:
    """:class:`PresignedSource` on the public bucket (``ocsp/root-signed/...``), cached in memory
    for ``ttl`` so a warm responder reads each object about once a minute at most.

    Args:
        s3: boto3 S3 client; bucket: the public bucket; clock: returns now (UTC).
    """

    def __init__(
        self, s3: Any, bucket: str, clock: Callable[[], datetime], ttl: timedelta = timedelta(seconds=60)
    ) -> None:
        self._s3, self._bucket, self._clock, self._ttl = s3, bucket, clock, ttl
        self._cache: dict[str, tuple[datetime, bytes | None]] = {}

    def get(self, key: str) -> bytes | None:
        """GetObject; None for NoSuchKey (the function may s3:ListBucket, so S3 says 404, not 403).

        Raises:
            AwsCallFailed: any other S3 failure (the responder answers ``tryLater``).
        """
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            body: bytes | None = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if aws_error_code(exc) not in ("NoSuchKey", "404"):
                raise aws_call_failed(exc, "s3", "GetObject") from exc
            body = None
        except BotoCoreError as exc:
            raise aws_call_failed(exc, "s3", "GetObject") from exc
        self._cache[key] = (now, body)
        return body
