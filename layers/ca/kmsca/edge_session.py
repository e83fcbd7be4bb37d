"""Sessions in edge targets' accounts: ``sts:AssumeRole`` of a target's edge role with its external
id, and boto3 clients made with those credentials.

- Credentials are cached per container (per role ARN and external id) until
  :data:`REFRESH_BEFORE_EXPIRY` before they expire, so a warm function pays one AssumeRole per
  target per hour, not per call.
- One client per (target, service, region), rebuilt when its credentials are renewed.
- ``RoleSessionName`` names the CA function (``AWS_LAMBDA_FUNCTION_NAME``), so the target account's
  CloudTrail shows which CA function acted.
- AWS errors become CA errors naming the target: an AssumeRole refused (``AccessDenied``) is
  :class:`~kmsca.errors.EdgeRoleRefused`; any other failure :class:`~kmsca.errors.EdgeTargetUnavailable`
  with the AWS error code.

Source: STS API reference, AssumeRole (ExternalId, RoleSessionName ``[\\w+=,.@-]{2,64}``,
DurationSeconds 900-43200, default 3600).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .aws_errors import aws_error_code, translating
from .errors import EdgeRoleRefused, EdgeTargetUnavailable
from .targets import EdgeTarget

REFRESH_BEFORE_EXPIRY = timedelta(minutes=5)
SESSION_SECONDS = 3600
_SESSION_NAME_CHARACTERS = re.compile(r"[^\w+=,.@-]", re.ASCII)
ACCESS_DENIED = ("AccessDenied", "AccessDeniedException")


def session_name(function_name: str | None = None) -> str:
    """The ``RoleSessionName``: the function's name (``AWS_LAMBDA_FUNCTION_NAME``), characters outside
    ``[\\w+=,.@-]`` replaced by ``-``, at most 64; ``kmsca`` when unknown."""
    name = function_name if function_name is not None else os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    cleaned = _SESSION_NAME_CHARACTERS.sub("-", name)[:64]
    return cleaned if len(cleaned) >= 2 else "kmsca"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore exception (``ClientError``), else the exception's class name
    (:func:`kmsca.aws_errors.aws_error_code`)."""
    return aws_error_code(exc)


def unavailable(target: EdgeTarget, what: str, exc: BaseException) -> EdgeTargetUnavailable:
    """The CA error for a failed call to ``target`` (``what``: "DescribeKeyValueStore", ...)."""
    return EdgeTargetUnavailable(
        f"edge target {target.name!r} (account {target.account_id}): {what} failed with {error_code(exc)}"
    )


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


class EdgeSessions:
    """AssumeRole into edge targets and make clients there.

    Args:
        sts: boto3 STS client of the CA function (its own role's credentials), or a function that
            makes one on first use (functions that rarely need a session: no client at cold start).
        function_name: for ``RoleSessionName`` (default: ``AWS_LAMBDA_FUNCTION_NAME``).
        client_factory: makes a client (``boto3.client``'s signature; injected in tests).
        clock: returns the current UTC time (injected in tests).
    """

    def __init__(
        self,
        sts: Any,
        function_name: str | None = None,
        client_factory: Callable[..., Any] = boto3.client,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sts_source = sts
        self._sts_client: Any = sts if hasattr(sts, "assume_role") else None
        self._session_name = session_name(function_name)
        self._client_factory = client_factory
        self._clock = clock
        self._credentials: dict[tuple[str, str], RoleCredentials] = {}
        self._clients: dict[tuple[str, str, str | None], tuple[Any, str]] = {}
        self.assume_role_calls = 0

    def assume(self, target: EdgeTarget, *, external_id: bool | str = True) -> RoleCredentials:
        """A fresh ``AssumeRole`` of the target's role (not cached). ``external_id=False`` leaves the
        external id out, a string sends that one instead of the target's: registration checks that
        the role then refuses.

        Raises:
            EdgeRoleRefused: the role refused (``AccessDenied``).
            EdgeTargetUnavailable: any other STS failure (throttling, a region without STS, ...).
        """
        kwargs: dict[str, Any] = {
            "RoleArn": target.role_arn,
            "RoleSessionName": self._session_name,
            "DurationSeconds": SESSION_SECONDS,
        }
        if external_id is True:
            kwargs["ExternalId"] = target.external_id
        elif isinstance(external_id, str):
            kwargs["ExternalId"] = external_id
        self.assume_role_calls += 1
        try:
            if self._sts_client is None:
                self._sts_client = self._sts_source()
            response = self._sts_client.assume_role(**kwargs)
        except ClientError as exc:
            if error_code(exc) in ACCESS_DENIED:
                raise EdgeRoleRefused(
                    f"edge target {target.name!r}: the role {target.role_arn} refused AssumeRole"
                    + (" with the registered external id" if external_id is True else "")
                    + "; check the edge stack's ExternalId and CaRoleArns parameters"
                ) from exc
            raise unavailable(target, "AssumeRole", exc) from exc
        except BotoCoreError as exc:
            raise unavailable(target, "AssumeRole", exc) from exc
        credentials = response["Credentials"]
        expiration = credentials["Expiration"]
        if isinstance(expiration, str):
            expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
        return RoleCredentials(
            credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"], expiration
        )

    def credentials(self, target: EdgeTarget) -> RoleCredentials:
        """The target role's credentials, from the cache while they are valid for more than
        :data:`REFRESH_BEFORE_EXPIRY`, else a new ``AssumeRole`` (errors as :meth:`assume`)."""
        key = (target.role_arn, target.external_id)
        cached = self._credentials.get(key)
        if cached is not None and self._clock() < cached.expiration - REFRESH_BEFORE_EXPIRY:
            return cached
        fresh = self.assume(target)
        self._credentials[key] = fresh
        return fresh

    def client(self, target: EdgeTarget, service: str, region: str | None = None) -> Any:
        """A boto3 client of ``service`` in the target's account (its edge role's credentials).

        Raises:
            EdgeRoleRefused, EdgeTargetUnavailable: see :meth:`assume`.
            AwsCallFailed: botocore could not make the client.
        """
        credentials = self.credentials(target)
        key = (target.name, service, region)
        cached = self._clients.get(key)
        if cached is not None and cached[1] == credentials.access_key_id:
            return cached[0]
        client = self.client_with(credentials, service, region)
        self._clients[key] = (client, credentials.access_key_id)
        return client

    def client_with(self, credentials: RoleCredentials, service: str, region: str | None = None) -> Any:
        """An uncached client with these credentials (registration's one-off checks).

        Raises:
            AwsCallFailed: botocore could not make the client (e.g. ``MissingDependencyException``:
                no ``awscrt`` for a SigV4A service).
        """
        with translating(service):
            return self._client_factory(
                service,
                region_name=region,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
            )

    def forget(self, target: EdgeTarget) -> None:
        """Drop the target's cached credentials and clients (after a refusal: the next call assumes again)."""
        self._credentials.pop((target.role_arn, target.external_id), None)
        for key in [k for k in self._clients if k[0] == target.name]:
            del self._clients[key]
