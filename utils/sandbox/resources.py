"""Resource creation of the sandbox: one small function per CloudFormation resource type.

Each creator gets the running sandbox (:class:`~utils.sandbox.context.StackContext`) and one
:class:`~utils.sandbox.template.Resource` (properties unresolved), creates the resource in moto
with the sandbox administrator's credentials, as CloudFormation would with its service role,
and returns the :class:`~utils.sandbox.template.Physical` that ``!Ref`` and ``!GetAtt`` give.
IAM resources and functions (which need their roles) are in :mod:`utils.sandbox.identities`.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .context import SandboxError, StackContext
from .kvs import KvsError
from .template import Physical, Resource

__all__ = [
    "IGNORED_TYPES",
    "MAX_CONNECTION_FUNCTION_CODE",
    "RESOURCE_CREATORS",
    "ConnectionFunction",
    "creates",
    "random_suffix",
    "tags",
]

# ---------------------------------------------------------------------------------------------
# Resource creation (one small function per resource type)
# ---------------------------------------------------------------------------------------------

ResourceCreator = Callable[[StackContext, Resource], Physical]
#: Resource type -> creator. Add a type by registering a function with :func:`creates`.
RESOURCE_CREATORS: dict[str, ResourceCreator] = {}
#: Types deliberately not emulated (no warning): they change nothing a local run can observe.
IGNORED_TYPES = {
    "AWS::S3::BucketPolicy",  # the TLS-only policy would deny moto's plain-http endpoint
    "AWS::Lambda::Permission",
    "AWS::Logs::LogGroup",
    "AWS::CloudWatch::Alarm",
}


def creates(*types: str) -> Callable[[ResourceCreator], ResourceCreator]:
    """Register a creator for these resource types."""

    def register(creator: ResourceCreator) -> ResourceCreator:
        for kind in types:
            RESOURCE_CREATORS[kind] = creator
        return creator

    return register


def random_suffix(length: int = 12) -> str:
    """Random suffix like CloudFormation's generated names (uppercase letters and digits)."""
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def tags(props: Mapping[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: str(t["Key"]), value: str(t["Value"])} for t in props.get("Tags") or []]


@creates("AWS::KMS::Key")
def _create_kms_key(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    key_spec = str(props.get("KeySpec", "SYMMETRIC_DEFAULT"))
    if key_spec.startswith("ML_DSA"):
        raw = resource.properties.get("KeySpec")
        parameter = raw.get("Ref") if isinstance(raw, dict) else None
        hint = f" (e.g. --parameter-overrides {parameter}=ECC_NIST_P384)" if parameter else ""
        raise SandboxError(
            f"{resource.logical_id}: KeySpec {key_spec} cannot be emulated: moto cannot create ML-DSA keys. "
            f"Use an RSA or ECC key spec in the sandbox{hint}."
        )
    kwargs: dict[str, Any] = {
        "KeySpec": key_spec,
        "KeyUsage": str(props.get("KeyUsage", "ENCRYPT_DECRYPT")),
        "Description": str(props.get("Description", "")),
        "Tags": tags(props, "TagKey", "TagValue"),
        "MultiRegion": bool(props.get("MultiRegion", False)),
    }
    if props.get("KeyPolicy"):
        kwargs["Policy"] = json.dumps(props["KeyPolicy"])
    kms = sandbox.client("kms")
    meta = kms.create_key(**kwargs)["KeyMetadata"]
    if str(props.get("Enabled", True)).lower() == "false":
        kms.disable_key(KeyId=meta["KeyId"])
    return Physical(ref=meta["KeyId"], attrs={"Arn": meta["Arn"], "KeyId": meta["KeyId"]})


@creates("AWS::KMS::Alias")
def _create_kms_alias(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    sandbox.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return Physical(ref=str(props["AliasName"]))


@creates("AWS::DynamoDB::Table")
def _create_table(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    name = str(props.get("TableName") or f"{sandbox.stack_name}-{resource.logical_id}-{random_suffix()}")
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for key in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            kwargs[key] = props[key]
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    sse = props.get("SSESpecification")
    if sse:
        kwargs["SSESpecification"] = {"Enabled": str(sse.get("SSEEnabled", False)).lower() == "true"}
    if props.get("Tags"):
        kwargs["Tags"] = tags(props)
    if "DeletionProtectionEnabled" in props:
        kwargs["DeletionProtectionEnabled"] = str(props["DeletionProtectionEnabled"]).lower() == "true"
    dynamodb = sandbox.client("dynamodb")
    table = dynamodb.create_table(**kwargs)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"],
                "Enabled": str(ttl.get("Enabled", True)).lower() == "true",
            },
        )
    attrs = {"Arn": table["TableArn"]}
    if table.get("LatestStreamArn"):
        attrs["StreamArn"] = table["LatestStreamArn"]
    return Physical(ref=name, attrs=attrs)


@creates("AWS::S3::Bucket")
def _create_bucket(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    name = str(
        props.get("BucketName")
        or f"{sandbox.stack_name}-{resource.logical_id}".lower()[:50] + "-" + random_suffix().lower()
    )
    s3 = sandbox.client("s3")
    if sandbox.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": sandbox.region})
    versioning = props.get("VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
    encryption = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")
    if encryption:
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            | ({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {})
            for rule in encryption
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    block = props.get("PublicAccessBlockConfiguration")
    if block:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={k: str(v).lower() == "true" for k, v in block.items()},
        )
    if props.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags(props)})
    suffix = sandbox.template.url_suffix
    return Physical(
        ref=name,
        attrs={
            "Arn": f"arn:{sandbox.template.partition}:s3:::{name}",
            "DomainName": f"{name}.s3.{suffix}",
            "RegionalDomainName": f"{name}.s3.{sandbox.region}.{suffix}",
            "WebsiteURL": f"http://{name}.s3-website-{sandbox.region}.{suffix}",
        },
    )


@creates("AWS::SNS::Topic")
def _create_topic(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    fifo = str(props.get("FifoTopic", False)).lower() == "true"
    name = str(
        props.get("TopicName")
        or f"{sandbox.stack_name}-{resource.logical_id}-{random_suffix()}" + (".fifo" if fifo else "")
    )
    attributes = {"FifoTopic": "true"} if fifo else {}
    sns = sandbox.client("sns")
    arn = sns.create_topic(Name=name, Attributes=attributes, Tags=tags(props))["TopicArn"]
    for subscription in props.get("Subscription") or []:
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return Physical(ref=arn, attrs={"TopicArn": arn, "TopicName": name})


@creates("AWS::SQS::Queue")
def _create_queue(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    fifo = str(props.get("FifoQueue", False)).lower() == "true"
    name = str(props.get("QueueName") or f"{sandbox.stack_name}-{resource.logical_id}-{random_suffix()}")
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        key: str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        for key in ("SqsManagedSseEnabled", "MessageRetentionPeriod", "VisibilityTimeout", "KmsMasterKeyId")
        if key in props
    }
    if fifo:
        attributes["FifoQueue"] = "true"
    sqs = sandbox.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes, tags={t["Key"]: t["Value"] for t in tags(props)})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Physical(ref=url, attrs={"Arn": arn, "QueueName": name, "QueueUrl": url})


@creates("AWS::SNS::Subscription")
def _create_subscription(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    arn = sandbox.client("sns").subscribe(
        TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"], ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    return Physical(ref=arn, attrs={"Arn": arn})


#: CloudFront's limit on a (connection) function's code, bytes.
MAX_CONNECTION_FUNCTION_CODE = 10 * 1024


@dataclass(frozen=True)
class ConnectionFunction:
    """An ``AWS::CloudFront::ConnectionFunction`` as created (recorded only; never executed).

    ``code``: the JavaScript source; ``key_value_store_arns``: the associated stores (their
    content: ``sandbox.kvs.items(arn)``); ``stage``: LIVE when AutoPublish, else DEVELOPMENT.
    """

    logical_id: str
    name: str
    arn: str
    id: str
    runtime: str
    comment: str
    code: str
    key_value_store_arns: tuple[str, ...]
    stage: str
    etag: str
    created: datetime

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (the sandbox state file's ``connection_functions`` entries)."""
        return {
            "name": self.name,
            "arn": self.arn,
            "id": self.id,
            "runtime": self.runtime,
            "stage": self.stage,
            "key_value_store_arns": list(self.key_value_store_arns),
            "code": self.code,
        }


def _import_source_items(sandbox: StackContext, source: Mapping[str, Any] | None) -> dict[str, str]:
    """Items of a KeyValueStore ``ImportSource`` (S3 JSON ``{"data": [{"key", "value"}]}``)."""
    if not source:
        return {}
    if str(source.get("SourceType", "S3")) != "S3":
        raise SandboxError(f"ImportSource type {source.get('SourceType')} is not supported (S3 only)")
    arn = str(source.get("SourceArn", ""))
    bucket, _, key = arn.split(":::", 1)[-1].partition("/")
    if not bucket or not key:
        raise SandboxError(f"ImportSource SourceArn {arn!r} is not an S3 object ARN")
    body = sandbox.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return {str(item["key"]): str(item["value"]) for item in json.loads(body)["data"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise SandboxError(f"ImportSource {arn}: not a KeyValueStore import file ({exc})") from exc


@creates("AWS::CloudFront::KeyValueStore")
def _create_key_value_store(sandbox: StackContext, resource: Resource) -> Physical:
    """The store in moto's CloudFront control plane; its data plane is ``sandbox.kvs``."""
    props = sandbox.resolve(resource.properties)
    name = str(props.get("Name") or f"{sandbox.stack_name}-{resource.logical_id}-{random_suffix()}")[:64]
    store = sandbox.client("cloudfront").create_key_value_store(Name=name, Comment=str(props.get("Comment") or ""))[
        "KeyValueStore"
    ]
    items = _import_source_items(sandbox, props.get("ImportSource"))
    try:
        sandbox.kvs.create_store(store["ARN"], items)
    except KvsError as exc:
        raise SandboxError(f"{resource.logical_id}: ImportSource refused: {exc}") from exc
    return Physical(ref=name, attrs={"Arn": store["ARN"], "Id": store["Id"], "Status": "READY"})


@creates("AWS::CloudFront::ConnectionFunction")
def _create_connection_function(sandbox: StackContext, resource: Resource) -> Physical:
    """Recorded in ``sandbox.connection_functions`` (moto has no connection functions)."""
    props = sandbox.resolve(resource.properties)
    name = str(props.get("Name") or f"{sandbox.stack_name}-{resource.logical_id}")[:64]
    config = props.get("ConnectionFunctionConfig") or {}
    code = str(props.get("ConnectionFunctionCode") or "")
    size = len(code.encode("utf-8"))
    if size > MAX_CONNECTION_FUNCTION_CODE:
        raise SandboxError(
            f"{resource.logical_id}: ConnectionFunctionCode is {size} bytes; CloudFront allows "
            f"{MAX_CONNECTION_FUNCTION_CODE}"
        )
    associations = config.get("KeyValueStoreAssociations") or []
    if isinstance(associations, Mapping):  # the API's {Quantity, Items} shape
        associations = associations.get("Items") or []
    kvs_arns = tuple(str(a["KeyValueStoreARN"]) for a in associations)
    for kvs_arn in kvs_arns:
        try:
            sandbox.kvs.etag(kvs_arn)
        except KeyError:
            raise SandboxError(f"{resource.logical_id}: KeyValueStore {kvs_arn} does not exist") from None
    now = datetime.now(UTC)
    auto_publish = str(props.get("AutoPublish", False)).lower() == "true"
    function = ConnectionFunction(
        logical_id=resource.logical_id,
        name=name,
        arn=f"arn:{sandbox.template.partition}:cloudfront::{sandbox.account_id}:connection-function/{name}",
        id=name,
        runtime=str(config.get("Runtime") or "cloudfront-js-2.0"),
        comment=str(config.get("Comment") or ""),
        code=code,
        key_value_store_arns=kvs_arns,
        stage="LIVE" if auto_publish else "DEVELOPMENT",
        etag="E" + random_suffix(13),
        created=now,
    )
    sandbox.connection_functions[resource.logical_id] = function
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return Physical(
        ref=function.id,
        attrs={
            "ConnectionFunctionArn": function.arn,
            "Id": function.id,
            "Stage": function.stage,
            "Status": "UNASSOCIATED",
            "ETag": function.etag,
            "CreatedTime": stamp,
            "LastModifiedTime": stamp,
        },
    )
