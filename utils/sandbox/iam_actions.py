"""What IAM authorises for one API call: action, resource ARN and context keys.

Source: the Service Authorization Reference ("Actions, resources, and condition keys
for <service>"), and the API references where they say which permission an operation
needs (e.g. S3 ``HeadObject`` needs ``s3:GetObject``; DynamoDB ``TransactWriteItems`` is
authorised per inner ``Put``/``Update``/``Delete``/``ConditionCheck``).

``service`` is the SigV4 signing name taken from the request (``dynamodb`` also for
DynamoDB Streams, ``monitoring`` for CloudWatch), ``operation`` the API operation
name (for S3, moto's IAM-style name such as ``GetObject`` or ``ListObjectsV2``),
``params`` the request parameters in the botocore shape. An operation missing from
the tables raises :class:`UnknownOperation`: a gap must be seen, never allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.kms.models import kms_backends
from moto.kms.utils import _deserialize_ciphertext_blob

from .iam_policy import RequestContext

__all__ = ["UnknownOperation", "request_contexts"]

ResourceTags = Callable[[str], Mapping[str, str]]
#: One authorisation: (action without service prefix, resource ARN, context keys).
_Keys = dict[str, tuple[str, ...]]
_Auth = tuple[str, str, _Keys]


class UnknownOperation(LookupError):
    """The sandbox does not know what IAM authorises for this operation."""


@dataclass(frozen=True)
class _Call:
    operation: str
    params: Mapping[str, Any]
    region: str
    account: str
    resource_tags: ResourceTags | None

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"


# ---------------------------------------------------------------- KMS
_KMS_KEY_OPS = frozenset(
    (
        "Sign Verify GetPublicKey DescribeKey Encrypt Decrypt ReEncrypt GenerateDataKey "
        "GenerateDataKeyWithoutPlaintext GenerateDataKeyPair GenerateMac VerifyMac GetKeyPolicy PutKeyPolicy "
        "GetKeyRotationStatus EnableKeyRotation DisableKeyRotation EnableKey DisableKey ScheduleKeyDeletion "
        "CancelKeyDeletion TagResource UntagResource ListResourceTags UpdateKeyDescription"
    ).split()
)


def _kms_key_arn(call: _Call, key_id: str) -> str:
    backend = kms_backends[call.account][call.region]
    try:
        return str(backend.keys[backend.any_id_to_key_id(key_id)].arn)
    except (KeyError, TypeError, AttributeError):
        if key_id.startswith("arn:"):
            return key_id
        return call.arn("kms", key_id if key_id.startswith("alias/") else f"key/{key_id}")


def _kms(call: _Call) -> list[_Auth]:
    op, params = call.operation, call.params
    if op in ("CreateKey", "ListKeys", "ListAliases"):
        return [(op, "*", {})]
    if op == "CreateAlias":
        alias_arn = call.arn("kms", str(params["AliasName"]))
        return [(op, alias_arn, {}), (op, _kms_key_arn(call, str(params["TargetKeyId"])), {})]
    if op not in _KMS_KEY_OPS:
        raise UnknownOperation(f"kms:{op}")
    key_id = params.get("KeyId")
    if key_id is None and op == "Decrypt":
        key_id = _deserialize_ciphertext_blob(params["CiphertextBlob"]).key_id
    keys: _Keys = {"kms:CallerAccount": (call.account,)}
    if str(key_id).startswith(("alias/", "arn:aws:kms")) and "alias/" in str(key_id):
        keys["kms:RequestAlias"] = ("alias/" + str(key_id).split("alias/", 1)[1],)
    for param, key in (("SigningAlgorithm", "kms:SigningAlgorithm"), ("MessageType", "kms:MessageType")):
        if param in params:
            keys[key] = (str(params[param]),)
    return [(op, _kms_key_arn(call, str(key_id)), keys)]


# ---------------------------------------------------------------- DynamoDB
_TABLE_OPS = frozenset(
    (
        "DescribeTable CreateTable DeleteTable UpdateTable DescribeTimeToLive UpdateTimeToLive "
        "DescribeContinuousBackups UpdateContinuousBackups"
    ).split()
)
_ITEM_OPS = {"GetItem": "Key", "DeleteItem": "Key", "UpdateItem": "Key", "PutItem": "Item"}
_TRANSACT_WRITE = {
    "Put": ("PutItem", "Item"),
    "Update": ("UpdateItem", "Key"),
    "Delete": ("DeleteItem", "Key"),
    "ConditionCheck": ("ConditionCheckItem", "Key"),
}
_OPTIONAL_KEYS = ("Select", "ReturnValues", "ReturnConsumedCapacity")


def _table_arn(call: _Call, table: str) -> str:
    return table if table.startswith("arn:") else call.arn("dynamodb", f"table/{table}")


def _partition_attr(call: _Call, table: str) -> str | None:
    try:
        return str(dynamodb_backends[call.account][call.region].get_table(table).hash_key_attr)
    except Exception:  # a missing table fails later, in moto, with its own error
        return None


def _scalar(value: Mapping[str, Any]) -> str:
    (typed,) = value.values()
    return typed.decode() if isinstance(typed, bytes) else str(typed)


def _leading(call: _Call, table: str, items: Iterable[Mapping[str, Any]]) -> _Keys:
    attr = _partition_attr(call, table)
    values = tuple(dict.fromkeys(_scalar(item[attr]) for item in items if attr and attr in item))
    return {"dynamodb:LeadingKeys": values} if values else {}


def _query_leading(call: _Call, table: str) -> _Keys:
    params, attr = call.params, _partition_attr(call, table)
    if attr is None:
        return {}
    legacy = params.get("KeyConditions", {}).get(attr)
    if legacy and legacy.get("ComparisonOperator") == "EQ":
        return {"dynamodb:LeadingKeys": (_scalar(legacy["AttributeValueList"][0]),)}
    names = {"#" + k.lstrip("#"): v for k, v in params.get("ExpressionAttributeNames", {}).items()}
    values = params.get("ExpressionAttributeValues", {})
    for left, right in re.findall(r"([#:]?[\w.]+)\s*=\s*([#:]?[\w.]+)", params.get("KeyConditionExpression", "")):
        name, placeholder = (left, right) if right.startswith(":") else (right, left)
        if names.get(name, name) == attr and placeholder in values:
            return {"dynamodb:LeadingKeys": (_scalar(values[placeholder]),)}
    return {}


def _dynamodb_item(call: _Call, op: str, table: str, item: Mapping[str, Any]) -> _Auth:
    keys = _leading(call, table, [item])
    keys.update({f"dynamodb:{k}": (str(call.params[k]),) for k in _OPTIONAL_KEYS if k in call.params})
    return (op, _table_arn(call, table), keys)


def _dynamodb_streams(call: _Call) -> list[_Auth]:
    params = call.params
    if call.operation == "ListStreams":
        return [("ListStreams", "*", {})]
    if call.operation == "GetRecords":  # moto's iterators are "<stream arn>|1|<id>"
        return [("GetRecords", str(params["ShardIterator"]).split("|", 1)[0], {})]
    return [(call.operation, str(params["StreamArn"]), {})]


def _dynamodb(call: _Call) -> list[_Auth]:
    op, params = call.operation, call.params
    if op in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"):
        return _dynamodb_streams(call)
    if op in ("ListTables", "DescribeLimits", "DescribeEndpoints"):
        return [(op, "*", {})]
    if op in ("TagResource", "UntagResource", "ListTagsOfResource"):
        return [(op, str(params["ResourceArn"]), {})]
    if op in _TABLE_OPS:
        return [(op, _table_arn(call, str(params["TableName"])), {})]
    if op in _ITEM_OPS:
        return [_dynamodb_item(call, op, str(params["TableName"]), params[_ITEM_OPS[op]])]
    if op in ("Query", "Scan"):
        table = str(params["TableName"])
        arn = _table_arn(call, table) + (f"/index/{params['IndexName']}" if "IndexName" in params else "")
        keys = _query_leading(call, table) if op == "Query" else {}
        keys.update({f"dynamodb:{k}": (str(params[k]),) for k in _OPTIONAL_KEYS if k in params})
        return [(op, arn, keys)]
    if op == "BatchGetItem":
        return [(op, _table_arn(call, t), _leading(call, t, r["Keys"])) for t, r in params["RequestItems"].items()]
    if op == "BatchWriteItem":
        return [
            (
                op,
                _table_arn(call, t),
                _leading(call, t, [w.get("PutRequest", {}).get("Item") or w["DeleteRequest"]["Key"] for w in writes]),
            )
            for t, writes in params["RequestItems"].items()
        ]
    if op == "TransactWriteItems":
        auths = []
        for entry in params["TransactItems"]:
            ((kind, body),) = entry.items()
            action, field = _TRANSACT_WRITE[kind]
            auths.append(_dynamodb_item(call, action, str(body["TableName"]), body[field]))
        return auths
    if op == "TransactGetItems":
        gets = [entry["Get"] for entry in params["TransactItems"]]
        return [_dynamodb_item(call, "GetItem", str(get["TableName"]), get["Key"]) for get in gets]
    raise UnknownOperation(f"dynamodb:{op}")


# ---------------------------------------------------------------- S3 (moto names its operations after IAM actions)
_S3_ALIASES = {
    "HeadObject": "GetObject",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "HeadBucket": "ListBucket",
    "ListBuckets": "ListAllMyBuckets",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeleteBucketPolicy": "DeleteBucketPolicy",
}
_S3_OBJECT = frozenset(
    (
        "GetObject PutObject DeleteObject GetObjectTagging PutObjectTagging GetObjectAcl PutObjectAcl "
        "AbortMultipartUpload ListMultipartUploadParts RestoreObject"
    ).split()
)
_S3_BUCKET = frozenset(
    (
        "ListBucket CreateBucket DeleteBucket ListBucketVersions ListBucketMultipartUploads "
        "GetBucketVersioning PutBucketVersioning GetBucketPolicy PutBucketPolicy DeleteBucketPolicy "
        "GetBucketLocation GetBucketNotification PutBucketNotification GetEncryptionConfiguration "
        "PutEncryptionConfiguration GetBucketTagging PutBucketTagging GetBucketPublicAccessBlock "
        "PutBucketPublicAccessBlock GetBucketOwnershipControls PutBucketOwnershipControls "
        "GetLifecycleConfiguration PutLifecycleConfiguration GetBucketCORS PutBucketCORS"
    ).split()
)


def _s3(call: _Call) -> list[_Auth]:
    params = call.params
    action = _S3_ALIASES.get(call.operation, call.operation)
    if action == "ListAllMyBuckets":
        return [(action, "*", {})]
    if action in _S3_OBJECT and params.get("Key"):
        if params.get("VersionId") and action in ("GetObject", "DeleteObject"):
            action += "Version"
        return [(action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}", {})]
    if action in _S3_BUCKET:
        keys: _Keys = {"s3:prefix": (str(params["Prefix"]),)} if action == "ListBucket" and "Prefix" in params else {}
        return [(action, f"arn:aws:s3:::{params['Bucket']}", keys)]
    raise UnknownOperation(f"s3:{call.operation}")


# ---------------------------------------------------------------- ACM
def _tag_keys(tags: Iterable[Mapping[str, Any]]) -> _Keys:
    tags = list(tags)
    keys: _Keys = {f"aws:RequestTag/{t['Key']}": (str(t.get("Value", "")),) for t in tags}
    if tags:
        keys["aws:TagKeys"] = tuple(str(t["Key"]) for t in tags)
    return keys


def _resource_tag_keys(call: _Call, arn: str) -> _Keys:
    tags = call.resource_tags(arn) if call.resource_tags else {}
    return {f"aws:ResourceTag/{k}": (v,) for k, v in tags.items()}


def _acm(call: _Call) -> list[_Auth]:
    op, params = call.operation, call.params
    if op == "ListCertificates":
        return [(op, "*", {})]
    if op == "ImportCertificate" and not params.get("CertificateArn"):
        return [(op, call.arn("acm", "certificate/*"), _tag_keys(params.get("Tags", [])))]
    if op in (
        "ImportCertificate",
        "AddTagsToCertificate",
        "RemoveTagsFromCertificate",
        "DescribeCertificate",
        "DeleteCertificate",
        "GetCertificate",
        "ListTagsForCertificate",
        "ExportCertificate",
    ):
        arn = str(params["CertificateArn"])
        keys = _resource_tag_keys(call, arn)
        if op in ("ImportCertificate", "AddTagsToCertificate"):
            keys.update(_tag_keys(params.get("Tags", [])))
        return [(op, arn, keys)]
    raise UnknownOperation(f"acm:{op}")


# ---------------------------------------------------------------- smaller services
def _sqs(call: _Call) -> list[_Auth]:
    op, params = call.operation, call.params
    if op in ("ListQueues",):
        return [(op, "*", {})]
    name = str(params.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1] or str(params.get("QueueName"))
    action = {
        "SendMessageBatch": "SendMessage",
        "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    }.get(op, op)
    if action not in (
        "SendMessage",
        "ReceiveMessage",
        "DeleteMessage",
        "ChangeMessageVisibility",
        "GetQueueUrl",
        "GetQueueAttributes",
        "SetQueueAttributes",
        "PurgeQueue",
        "CreateQueue",
        "DeleteQueue",
    ):
        raise UnknownOperation(f"sqs:{op}")
    return [(action, call.arn("sqs", name), {})]


def _sns(call: _Call) -> list[_Auth]:
    op, params = call.operation, call.params
    if op in ("ListTopics", "ListSubscriptions"):
        return [(op, "*", {})]
    if op == "CreateTopic":
        return [(op, call.arn("sns", str(params["Name"])), _tag_keys(params.get("Tags", [])))]
    if op in (
        "Publish",
        "Subscribe",
        "GetTopicAttributes",
        "SetTopicAttributes",
        "ListSubscriptionsByTopic",
        "DeleteTopic",
        "PublishBatch",
    ):
        return [(op, str(params.get("TopicArn") or params.get("TargetArn")), {})]
    raise UnknownOperation(f"sns:{op}")


def _simple(service: str, table: Mapping[str, Callable[[_Call], str]]) -> Callable[[_Call], list[_Auth]]:
    def handler(call: _Call) -> list[_Auth]:
        if call.operation not in table:
            raise UnknownOperation(f"{service}:{call.operation}")
        return [(call.operation, table[call.operation](call), {})]

    return handler


def _function_arn(call: _Call) -> str:
    name = str(call.params["FunctionName"])
    return name if name.startswith("arn:") else call.arn("lambda", f"function:{name}")


def _lambda(call: _Call) -> list[_Auth]:
    if call.operation == "ListFunctions":
        return [("ListFunctions", "*", {})]
    action = {"Invoke": "InvokeFunction", "GetFunction": "GetFunction"}.get(call.operation)
    if action is None:
        raise UnknownOperation(f"lambda:{call.operation}")
    return [(action, _function_arn(call), {})]


def _stack_arn(call: _Call) -> str:
    name = call.params.get("StackName")
    if not name:
        return "*"
    return str(name) if str(name).startswith("arn:") else call.arn("cloudformation", f"stack/{name}/*")


def _trust_store(call: _Call) -> str:
    return call.arn("cloudfront", f"trust-store/{call.params.get('Id', '*')}", region=False)


def _events(call: _Call) -> list[_Auth]:
    if call.operation != "PutEvents":
        raise UnknownOperation(f"events:{call.operation}")
    auths: list[_Auth] = []
    for entry in call.params["Entries"]:
        bus = str(entry.get("EventBusName") or "default")
        arn = bus if bus.startswith("arn:") else call.arn("events", f"event-bus/{bus}")
        keys: _Keys = {
            "events:source": (str(entry.get("Source", "")),),
            "events:detail-type": (str(entry.get("DetailType", "")),),
        }
        auths.append(("PutEvents", arn, keys))
    return auths


def _cloudwatch(call: _Call) -> list[_Auth]:
    if call.operation != "PutMetricData":
        raise UnknownOperation(f"cloudwatch:{call.operation}")
    return [("PutMetricData", "*", {"cloudwatch:namespace": (str(call.params.get("Namespace", "")),)})]


def _sts(call: _Call) -> list[_Auth]:
    if call.operation == "GetCallerIdentity":
        return []  # always allowed, even under an explicit deny (STS API reference)
    if call.operation == "AssumeRole":
        external_id = call.params.get("ExternalId")
        keys: dict[str, tuple[str, ...]] = {"sts:ExternalId": (str(external_id),)} if external_id else {}
        return [("AssumeRole", str(call.params["RoleArn"]), keys)]
    raise UnknownOperation(f"sts:{call.operation}")


_TRUST_STORE_OPS = ("GetTrustStore", "UpdateTrustStore", "DeleteTrustStore", "CreateTrustStore")
_KVS_OPS = ("DescribeKeyValueStore", "ListKeys", "GetKey", "UpdateKeys", "PutKey", "DeleteKey")

#: signing name -> (IAM service prefix, handler)
_SERVICES: dict[str, tuple[str, Callable[[_Call], list[_Auth]]]] = {
    "kms": ("kms", _kms),
    "dynamodb": ("dynamodb", _dynamodb),
    "s3": ("s3", _s3),
    "acm": ("acm", _acm),
    "sqs": ("sqs", _sqs),
    "sns": ("sns", _sns),
    "sts": ("sts", _sts),
    "events": ("events", _events),
    "monitoring": ("cloudwatch", _cloudwatch),
    "cloudwatch": ("cloudwatch", _cloudwatch),
    "lambda": ("lambda", _lambda),
    "cloudformation": ("cloudformation", _simple("cloudformation", {"DescribeStacks": _stack_arn})),
    "cloudfront": ("cloudfront", _simple("cloudfront", {op: _trust_store for op in _TRUST_STORE_OPS})),
    "cloudfront-keyvaluestore": (
        "cloudfront-keyvaluestore",
        _simple("cloudfront-keyvaluestore", {op: (lambda c: str(c.params["KvsARN"])) for op in _KVS_OPS}),
    ),
}


def request_contexts(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    region: str,
    account_id: str,
    resource_tags: ResourceTags | None = None,
    secure_transport: bool = False,
    strict: bool = False,
) -> list[RequestContext]:
    """The authorisations AWS makes for one call; ``[]`` means always allowed.

    Each context carries the request's own keys plus ``aws:SecureTransport`` and
    ``aws:RequestedRegion``; the principal's keys (``aws:PrincipalArn``,
    ``aws:PrincipalAccount``) are added by the enforcer, which knows the caller.
    ``resource_tags(arn)`` supplies an existing resource's tags for
    ``aws:ResourceTag/<key>``. An operation without a rule here (the sandbox's own provisioning,
    IAM, control planes) is authorised against ``Resource: "*"`` only, so only a statement that
    allows it on every resource lets it through; ``strict=True`` raises :class:`UnknownOperation`
    instead (tests use it to prove each call the functions make has its rule).
    """
    common = {"aws:SecureTransport": ("true" if secure_transport else "false",), "aws:RequestedRegion": (region,)}
    prefix, handler = _SERVICES.get(service, (service, None))
    call = _Call(operation, params, region, account_id, resource_tags)
    try:
        if handler is None:
            raise UnknownOperation(f"{service}:{operation}")
        auths = handler(call)
    except UnknownOperation:
        if not strict and operation:
            # Not one of the calls the project's functions make (provisioning, inspection): only a
            # statement with Resource "*" can allow it, so a scoped role is refused, never let through.
            return [RequestContext(action=f"{prefix}:{operation}", resource="*", condition_values=common)]
        raise
    return [
        RequestContext(action=f"{prefix}:{action}", resource=resource, condition_values={**common, **keys})
        for action, resource, keys in auths
    ]
