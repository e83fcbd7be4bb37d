"""Test helpers for edge targets in moto: a workload account with an edge role and a KeyValueStore,
and an STS wrapper that evaluates the edge role's trust (moto's AssumeRole does not check trust
policies; the sandbox's does, see utils/sandbox).

moto keeps accounts apart by the credentials' account: credentials from ``sts.assume_role`` of a
role in account B act in account B (the role need not exist for moto).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError
from kmsca.targets import EdgeTarget

WORKLOAD = "222222222222"
OTHER = "333333333333"
EDGE_PREFIX = "kmsca-dev-edge-"
EXTERNAL_ID = "ca-stack-0a1b2c3d-4e5f-6789"


def account_clients(account_id: str) -> dict[str, Any]:
    """Administrator credentials in ``account_id`` (moto)."""
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/admin", RoleSessionName="admin")["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


@dataclass
class EdgeAccount:
    """What the edge stack creates in one account (the parts the CA uses)."""

    account_id: str
    role_arn: str
    kvs_arn: str
    credentials: dict[str, Any]

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(service, region_name=region, **self.credentials)

    def target(self, name: str = "prod", external_id: str = EXTERNAL_ID, **overrides: Any) -> EdgeTarget:
        fields: dict[str, Any] = {
            "name": name,
            "account_id": self.account_id,
            "role_arn": self.role_arn,
            "external_id": external_id,
            "kvs_arn": self.kvs_arn,
            "trust_store_id": None,
            "registered_at": datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
            "registered_by": "arn:aws:iam::111111111111:user/operator",
        }
        fields.update(overrides)
        return EdgeTarget(**fields)


def make_edge_account(account_id: str = WORKLOAD, role_name: str = f"{EDGE_PREFIX}us-east-1") -> EdgeAccount:
    credentials = account_clients(account_id)
    iam = boto3.client("iam", region_name="us-east-1", **credentials)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", **credentials)
    kvs_arn = cloudfront.create_key_value_store(Name=f"revoked-{account_id}")["KeyValueStore"]["ARN"]
    return EdgeAccount(account_id, role_arn, kvs_arn, credentials)


class TrustingSts:
    """moto's STS client, with AssumeRole refused (``AccessDenied``) unless the external id matches
    what the role's trust policy requires (``required``: role ARN -> external id, None = no
    condition, the unsafe role). Roles not in ``required`` are refused. Counts calls."""

    def __init__(self, required: dict[str, str | None]) -> None:
        self._sts = boto3.client("sts", region_name="us-east-1")
        self.required = required
        self.calls: list[dict[str, Any]] = []
        self.fail_with: str | None = None  # an error code every AssumeRole raises (throttling, ...)

    def assume_role(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if self.fail_with:
            raise ClientError({"Error": {"Code": self.fail_with, "Message": "injected"}}, "AssumeRole")
        arn = kwargs["RoleArn"]
        if arn not in self.required:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not trusted"}}, "AssumeRole")
        expected = self.required[arn]
        if expected is not None and kwargs.get("ExternalId") != expected:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "external id"}}, "AssumeRole")
        return self._sts.assume_role(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sts, name)
