"""ACM us-east-1 as the issuer and the rotation see it (:class:`kmsca.acm.AcmImporter`), in memory.

It keeps what was imported (certificate PEM, chain PEM, tags; the private key object only to check
that it matches, never serialised) and can refuse the next import as the adapter reports ACM's
answer (:class:`~kmsca.errors.AwsCallFailed` of a 4xx ``ClientError``: nothing imported) or lose
its reply (of a 5xx: it may have imported).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from kmsca.acm import OriginBundle
from kmsca.aws_errors import aws_call_failed

ARN_PREFIX = "arn:aws:acm:us-east-1:123456789012:certificate/"


@dataclass
class Imported:
    """One ARN's content."""

    certificate_pem: str
    chain_pem: str
    private_key: Any
    tags: dict[str, str] = field(default_factory=dict)


class FakeAcm:
    """The :class:`~kmsca.acm.AcmImporter` methods the issuer and the rotation call.

    Attributes:
        imported: ARN -> what it serves.
        refuse_next: an ACM error code (``ValidationException``...) the next import fails with.
    """

    def __init__(self) -> None:
        self.imported: dict[str, Imported] = {}
        self.deleted: list[str] = []
        self.refuse_next: str | None = None
        self._ids = itertools.count(1)

    def client(self) -> FakeAcm:
        """What :meth:`kmsca.acm_targets.AcmTargets.prepare` asks for: there is no client to make."""
        return self

    def _maybe_refuse(self, operation: str) -> None:
        if self.refuse_next is not None:
            code, self.refuse_next = self.refuse_next, None
            status = 500 if code in ("InternalFailure", "ServiceUnavailable") else 400
            answer = ClientError(
                {"Error": {"Code": code, "Message": "refused"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                operation,
            )
            raise aws_call_failed(answer, "acm") from answer

    def import_new(self, bundle: OriginBundle, tags: Mapping[str, str]) -> str:
        self._maybe_refuse("ImportCertificate")
        arn = f"{ARN_PREFIX}{next(self._ids):08d}-0000-4000-8000-000000000000"
        self.imported[arn] = Imported(bundle.certificate_pem, bundle.chain_pem, bundle.private_key, dict(tags))
        return arn

    def reimport(self, arn: str, bundle: OriginBundle) -> None:
        self._maybe_refuse("ImportCertificate")
        tags = self.imported[arn].tags
        self.imported[arn] = Imported(bundle.certificate_pem, bundle.chain_pem, bundle.private_key, tags)

    def delete(self, arn: str) -> None:
        self.imported.pop(arn, None)
        self.deleted.append(arn)
