"""The registration's checks that an edge target's resources answer through its role:
``cloudfront-keyvaluestore:DescribeKeyValueStore`` of its KeyValueStore and, when it names one,
``cloudfront:GetTrustStore`` of its trust store (CloudFront API reference). AWS failures become
:class:`~kmsca.errors.EdgeTargetUnavailable` naming the target, the call and the AWS error code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .edge_session import EdgeSessions, RoleCredentials, unavailable
from .targets import EdgeTarget

KVS_SERVICE = "cloudfront-keyvaluestore"
KVS_REGION = "us-east-1"  # the data plane is global; SigV4A signs for every region


def probe_edge_resources(sessions: EdgeSessions, credentials: RoleCredentials, target: EdgeTarget) -> None:
    """DescribeKeyValueStore of ``target.kvs_arn``, then GetTrustStore of ``target.trust_store_id``
    (if any), with ``credentials`` (the target role's, from :meth:`EdgeSessions.assume`).

    Raises:
        EdgeTargetUnavailable: a call failed (missing resource, not allowed to the role, throttled).
        AwsCallFailed: a client could not be made.
    """
    kvs = sessions.client_with(credentials, KVS_SERVICE, KVS_REGION)
    _through(target, "DescribeKeyValueStore", lambda: kvs.describe_key_value_store(KvsARN=target.kvs_arn))
    if target.trust_store_id:
        cloudfront = sessions.client_with(credentials, "cloudfront", KVS_REGION)
        _through(target, "GetTrustStore", lambda: cloudfront.get_trust_store(Identifier=target.trust_store_id))


def _through(target: EdgeTarget, what: str, call: Callable[[], Any]) -> Any:
    """Run one call through the target's role; AWS failures become EdgeTargetUnavailable."""
    try:
        return call()
    except (ClientError, BotoCoreError) as exc:
        raise unavailable(target, what, exc) from exc
