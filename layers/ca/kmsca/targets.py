"""Edge targets: the workload accounts whose KeyValueStore, ACM (us-east-1) and trust store the CA
keeps up to date through each account's edge role (edge/template.yaml).

An :class:`EdgeTarget` is validated when it is built (formats, and that the role and the
KeyValueStore belong to the target's account); :class:`DynamoDbTargetStore` keeps the registry in
one table item, ``TARGET#registry`` (:func:`kmsca.table_keys.targets_key`), a map from target name
to target, so one ``GetItem`` lists every target (the KeyValueStore sync reads it on every run).
A target is added or removed with one conditional ``UpdateItem`` on its own map entry: concurrent
registrations of different names never overwrite each other.

The external id is stored (the CA needs it for every ``AssumeRole``) but never returned by
:meth:`EdgeTarget.public` nor logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .aws_errors import translated
from .errors import InvalidTarget, TargetAlreadyRegistered, TargetNotFound
from .records import iso, parse_iso
from .request_values import TARGET_NAME
from .table_keys import targets_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Patterns end with \Z, not $: $ also matches before a trailing newline.
#: The target of requests that name none: the CA account's own edge stack (single-account case).
LOCAL_TARGET = "local"

ACCOUNT_ID = re.compile(r"^[0-9]{12}\Z")
#: IAM role ARN (IAM User Guide, IAM identifiers): optional path, name of 1-64 characters.
ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>[0-9]{12}):role/"
    r"(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,64})\Z",
    re.ASCII,
)
#: CloudFront KeyValueStore ARN (CloudFront API reference, KeyValueStore.ARN).
KVS_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):cloudfront::(?P<account>[0-9]{12}):"
    r"key-value-store/(?P<id>[A-Za-z0-9-]{1,64})\Z",
    re.ASCII,
)
#: sts:ExternalId: 2-1224 characters of [\w+=,.@:/-] (STS AssumeRole); the edge template asks 16 at least.
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{16,1224}\Z", re.ASCII)
TRUST_STORE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z", re.ASCII)
REGISTERED_BY_MAX = 256


@dataclass(frozen=True)
class EdgeTarget:
    """One registered edge target.

    Attributes:
        name: ``^[a-z0-9][a-z0-9-]{0,62}$`` (``local`` is the CA account's own edge stack).
        account_id: the workload account (12 digits).
        role_arn: its edge role; in ``account_id``.
        external_id: the ``sts:ExternalId`` its trust policy requires (never returned or logged).
        kvs_arn: its KeyValueStore of revoked serials; in ``account_id``.
        trust_store_id: its CloudFront trust store, or None.
        registered_at: when it was registered (UTC).
        registered_by: who registered it (a label: the operator CLI sends its STS ARN).

    Raises:
        InvalidTarget: any field malformed, or the role or store of another account.
    """

    name: str
    account_id: str
    role_arn: str
    external_id: str
    kvs_arn: str
    trust_store_id: str | None
    registered_at: datetime
    registered_by: str = ""

    def __post_init__(self) -> None:
        check_target_name(self.name)
        if not isinstance(self.account_id, str) or not ACCOUNT_ID.match(self.account_id):
            raise InvalidTarget("account_id must be a 12-digit AWS account id")
        role = ROLE_ARN.match(self.role_arn) if isinstance(self.role_arn, str) else None
        if role is None:
            raise InvalidTarget("role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        if role["account"] != self.account_id:
            raise InvalidTarget(f"role_arn is in account {role['account']}, not the target's account {self.account_id}")
        kvs = KVS_ARN.match(self.kvs_arn) if isinstance(self.kvs_arn, str) else None
        if kvs is None:
            raise InvalidTarget(
                "kvs_arn must be a CloudFront KeyValueStore ARN (arn:aws:cloudfront::<account>:key-value-store/<id>)"
            )
        if kvs["account"] != self.account_id:
            raise InvalidTarget(f"kvs_arn is in account {kvs['account']}, not the target's account {self.account_id}")
        if kvs["partition"] != role["partition"]:
            raise InvalidTarget("role_arn and kvs_arn are in different AWS partitions")
        if not isinstance(self.external_id, str) or not EXTERNAL_ID.match(self.external_id):
            raise InvalidTarget("external_id must be 16-1224 characters of letters, digits and _+=,.@:/-")
        if self.trust_store_id is not None and (
            not isinstance(self.trust_store_id, str) or not TRUST_STORE_ID.match(self.trust_store_id)
        ):
            raise InvalidTarget("trust_store_id must be a CloudFront trust store id (letters, digits, _ and -)")
        if not isinstance(self.registered_by, str) or len(self.registered_by) > REGISTERED_BY_MAX:
            raise InvalidTarget(f"registered_by must be text of at most {REGISTERED_BY_MAX} characters")
        if self.registered_at.tzinfo is None:
            raise InvalidTarget("registered_at must be timezone-aware")

    @property
    def role_name(self) -> str:
        """The role's name (without path)."""
        match = ROLE_ARN.match(self.role_arn)
        return match["name"] if match else ""

    @property
    def partition(self) -> str:
        match = ROLE_ARN.match(self.role_arn)
        return match["partition"] if match else "aws"

    def public(self) -> dict[str, Any]:
        """What the targets function returns (everything but the external id)."""
        return {
            "name": self.name,
            "account_id": self.account_id,
            "role_arn": self.role_arn,
            "kvs_arn": self.kvs_arn,
            "trust_store_id": self.trust_store_id,
            "registered_at": iso(self.registered_at),
            "registered_by": self.registered_by,
        }


def check_target_name(name: object) -> str:
    """``name`` if it is a valid target name, else :class:`InvalidTarget`."""
    if not isinstance(name, str) or not TARGET_NAME.match(name):
        raise InvalidTarget(
            "a target name is 1-63 characters: lowercase letters, digits and '-', not starting with '-'"
        )
    return name


def check_assumable(target: EdgeTarget, role_name_prefix: str) -> None:
    """Refuse a role the CA's functions may not assume: their policies allow ``sts:AssumeRole`` on
    ``arn:<partition>:iam::*:role/<project>-<environment>-edge-*`` only (template.yaml).

    Raises:
        InvalidTarget: the role's name does not start with ``role_name_prefix`` or it has a path.
    """
    match = ROLE_ARN.match(target.role_arn)
    if match is None or match["path"] or not match["name"].startswith(role_name_prefix):
        raise InvalidTarget(
            f"role_arn must name a role {role_name_prefix}* without a path (the edge stack's EdgeRole): "
            "the CA's functions may assume no other role"
        )


def _to_item(target: EdgeTarget) -> dict[str, Any]:
    item: dict[str, Any] = {
        "account_id": {"S": target.account_id},
        "role_arn": {"S": target.role_arn},
        "external_id": {"S": target.external_id},
        "kvs_arn": {"S": target.kvs_arn},
        "registered_at": {"S": iso(target.registered_at)},
        "registered_by": {"S": target.registered_by},
    }
    if target.trust_store_id:
        item["trust_store_id"] = {"S": target.trust_store_id}
    return {"M": item}


def _from_item(name: str, value: dict[str, Any]) -> EdgeTarget:
    fields = value["M"]
    return EdgeTarget(
        name=name,
        account_id=fields["account_id"]["S"],
        role_arn=fields["role_arn"]["S"],
        external_id=fields["external_id"]["S"],
        kvs_arn=fields["kvs_arn"]["S"],
        trust_store_id=fields.get("trust_store_id", {}).get("S"),
        registered_at=parse_iso(fields["registered_at"]["S"]),
        registered_by=fields.get("registered_by", {}).get("S", ""),
    )


@translated("dynamodb")
class DynamoDbTargetStore:
    """The registry of edge targets in the CA table (item ``TARGET#registry`` only: ``GetItem``,
    ``UpdateItem``, and ``PutItem`` to create the item once)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._key = {"pk": {"S": targets_key()}}

    def list_targets(self) -> list[EdgeTarget]:
        """Every registered target, by name (consistent read). A map entry that cannot be read
        raises ``KeyError``/``InvalidTarget``: a registry the CA cannot trust is not used."""
        item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True).get("Item")
        targets = (item or {}).get("targets", {}).get("M", {})
        return [_from_item(name, value) for name, value in sorted(targets.items())]

    def get(self, name: str) -> EdgeTarget:
        """The target named ``name``.

        Raises:
            TargetNotFound: no such target.
        """
        check_target_name(name)
        for target in self.list_targets():
            if target.name == name:
                return target
        raise TargetNotFound(f"no edge target named {name!r} is registered (utils/edge-targets.py list)")

    def put(self, target: EdgeTarget, *, replace: bool = False) -> None:
        """Register ``target`` (one conditional ``UpdateItem``; the item is created on first use).

        Raises:
            TargetAlreadyRegistered: a target with that name exists and ``replace`` is False.
        """
        condition = "attribute_exists(targets)" + ("" if replace else " AND attribute_not_exists(targets.#n)")
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET targets.#n = :t",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#n": target.name},
                ExpressionAttributeValues={":t": _to_item(target)},
            )
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        if self._exists(target.name):
            raise TargetAlreadyRegistered(
                f"an edge target named {target.name!r} is registered already; deregister it first"
            )
        try:  # no registry item yet: create it with this target
            self._client.put_item(
                TableName=self._table,
                Item={**self._key, "targets": {"M": {target.name: _to_item(target)}}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self.put(target, replace=replace)  # created concurrently: add the entry to it

    def _exists(self, name: str) -> bool:
        return any(t.name == name for t in self.list_targets())

    def require_free(self, name: str) -> None:
        """Raises :class:`TargetAlreadyRegistered` when ``name`` is registered (a check before the
        registration's AWS calls; :meth:`put` checks again, atomically)."""
        if self._exists(name):
            raise TargetAlreadyRegistered(f"an edge target named {name!r} is registered already; deregister it first")

    def delete(self, name: str) -> None:
        """Deregister ``name`` (conditional ``UpdateItem ... REMOVE``).

        Raises:
            TargetNotFound: no such target.
        """
        check_target_name(name)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="REMOVE targets.#n",
                ConditionExpression="attribute_exists(targets.#n)",
                ExpressionAttributeNames={"#n": name},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise TargetNotFound(f"no edge target named {name!r} is registered") from exc
            raise
