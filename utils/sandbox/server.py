"""The local sandbox: moto in server mode + the template's Lambda handlers run in-process.

One HTTP endpoint on 127.0.0.1 answers every AWS API a client or a function uses:

- Lambda ``Invoke`` (``POST /2015-03-31/functions/{name-or-arn}/invocations``) for the
  template's functions runs the real handler in this process (moto needs Docker for that);
- CloudFormation ``DescribeStacks`` for the sandbox's stack returns the template's
  Outputs, so a CLI that finds things through stack outputs works unchanged;
- ``PUT /__sandbox__/cfn-response/{request-id}`` receives custom-resource responses;
- CloudFront KeyValueStore data plane (``/key-value-stores/...``, SigV4A) is answered by the
  KVS emulator (:mod:`utils.sandbox.kvs`), which also answers in-process clients through
  botocore's ``before-send`` event; ``GET /__sandbox__/kvs[/{arn}]`` shows the stores' content;
- ``POST /__sandbox__/schedules/{FunctionLogicalId}[/{EventName}]`` runs a schedule now;
- everything else (KMS, DynamoDB, DynamoDB Streams, S3, SNS, ACM in any region, CloudFront
  control plane, ...) is moto, with KMS and ACM patched to behave as AWS does.

On :meth:`Sandbox.start` the resources the template declares are created in dependency
order, the way CloudFormation would: KMS keys, tables, buckets, topics, KeyValueStores,
connection functions (recorded), functions, then each custom resource's ``Create`` is sent to
its function with a real CloudFormation event, and the sandbox waits for the response. Then
the event sources start: DynamoDB stream pollers (LATEST = from now), schedules (on demand
unless ``run_schedules``); see :mod:`utils.sandbox.events`.

Use from tests::

    with Sandbox(repo_root) as sandbox:
        result = sandbox.invoke("IssueFunction", {"csr": pem})
        kms = sandbox.client("kms")
        sandbox.invoke("RevokeFunction", {"serial_number": result["serial_number"]})
        # the table stream triggers PublishCrlFunction and SyncKvsFunction within ~1-2 s
        sandbox.kvs.items(sandbox.outputs["RevokedSerialsStoreArn"])
        sandbox.trigger_schedule("SyncKvsFunction").raise_for_error()

Limits: one active Sandbox per process is the normal case (moto's state is
process-global and is reset when the first sandbox starts and the last one stops).
Invocations are serialised because ``os.environ`` is process-global; a handler that
synchronously invokes another sandbox function waits up to its timeout and gets
``TooManyRequestsException``. Timeouts are reported, not enforced (a thread cannot be
killed). No ``LogType=Tail``, no versions/aliases, no async retries.
"""

from __future__ import annotations

import contextlib
import decimal
import importlib.util
import io
import itertools
import json
import logging
import os
import re
import secrets
import socket
import string
import sys
import threading
import time
import tomllib
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import get_input_stream

from .acm_patch import patch_moto_acm
from .dynamodb_patch import patch_moto_dynamodb
from .events import DynamoDbStreamSource, FilterError, ScheduleSource
from .kms_patch import patch_moto_kms
from .kvs import (
    KvsEmulator,
    KvsError,
    install_kvs_emulator,
    installed_kvs_emulator,
    is_kvs_request,
    uninstall_kvs_emulator,
)
from .template import Function, Output, Physical, Resource, Template, TemplateError, stringify

__all__ = [
    "DUMMY_CREDENTIALS",
    "EVENT_SOURCES",
    "RESOURCE_CREATORS",
    "ConnectionFunction",
    "EventSource",
    "FunctionError",
    "InvocationResult",
    "LambdaContext",
    "LocalFunction",
    "Sandbox",
    "SandboxError",
]

logger = logging.getLogger(__name__)

#: Credentials every sandbox client and function uses (moto accepts anything).
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}

CFN_RESPONSE_PATH = "/__sandbox__/cfn-response/"
SCHEDULES_PATH = "/__sandbox__/schedules/"
KVS_PATH = "/__sandbox__/kvs"
_INVOKE_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_SIGNING_SERVICE_RE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")
#: Variables of the host process a function must not inherit (they describe the host's AWS setup).
_HOST_ENV_PREFIXES = ("AWS_", "POWERTOOLS_", "_HANDLER", "_X_AMZN_", "LAMBDA_")
_MAX_CFN_RESPONSE_BYTES = 4096


class SandboxError(Exception):
    """The sandbox cannot start or a resource cannot be created (message says which and why)."""


class FunctionError(Exception):
    """A handler raised: ``error_type`` is the exception class name (the domain error code).

    ``error_message``: str(exception); ``stack_trace``: list of formatted frames;
    ``payload``: the raw error document Lambda returned.
    """

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = dict(payload)
        self.error_type: str = str(payload.get("errorType", ""))
        self.error_message: str = str(payload.get("errorMessage", ""))
        self.stack_trace: list[str] = list(payload.get("stackTrace") or [])
        super().__init__(f"{self.error_type}: {self.error_message}")


class _Busy(Exception):
    """Another invocation kept the (serialising) invocation lock past the caller's timeout."""


# ---------------------------------------------------------------------------------------------
# In-process Lambda runtime
# ---------------------------------------------------------------------------------------------


class LambdaContext:
    """What the Python runtime passes as ``context`` (awslambdaric's attributes).

    ``memory_limit_in_mb`` is a string, as in the real runtime.
    """

    def __init__(self, function: LocalFunction, request_id: str) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = str(function.spec.memory_size)
        self.aws_request_id = request_id
        self.log_group_name = function.log_group_name
        self.log_stream_name = function.log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline_ms = int(time.time() * 1000) + function.spec.timeout * 1000

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout (never negative)."""
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


@dataclass(frozen=True)
class InvocationResult:
    """Outcome of one invocation.

    ``payload``: the response body (JSON bytes); ``function_error``: "Unhandled" when the
    handler failed (payload is then the error document), else None; ``duration_ms``: float.
    """

    request_id: str
    payload: bytes
    function_error: str | None = None
    duration_ms: float = 0.0

    def json(self) -> Any:
        """The payload decoded (None for an empty payload)."""
        return json.loads(self.payload) if self.payload else None

    def raise_for_error(self) -> Any:
        """The decoded payload, or :class:`FunctionError` if the handler failed."""
        if self.function_error:
            raise FunctionError(self.json() or {})
        return self.json()


def _json_default(value: Any) -> Any:
    """Encode Decimals (e.g. from DynamoDB) as numbers, as the Lambda runtime does."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _error_document(error_type: str, message: str, stack: list[str] | None = None, request_id: str = "") -> bytes:
    """Lambda's error payload: {"errorMessage", "errorType", "requestId", "stackTrace"}."""
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []}
    ).encode()


class _InitError(Exception):
    """The handler module could not be loaded; ``document`` is Lambda's error payload."""

    def __init__(self, document: bytes) -> None:
        super().__init__(document.decode())
        self.document = document


@contextlib.contextmanager
def _environ(target: Mapping[str, str]) -> Iterator[None]:
    """Make os.environ equal to ``target`` for the block, touching only keys that change."""
    saved = dict(os.environ)

    def apply(wanted: Mapping[str, str]) -> None:
        for key in list(os.environ):
            if key not in wanted:
                del os.environ[key]
        for key, value in wanted.items():
            if os.environ.get(key) != value:
                os.environ[key] = value

    apply(target)
    try:
        yield
    finally:
        apply(saved)


_module_counter = itertools.count(1)


class LocalFunction:
    """One ``AWS::Serverless::Function`` of the template, run in this process.

    ``name``: physical name (``<stack>-<LogicalId>`` unless FunctionName is set);
    ``arn``: its Lambda ARN; ``env``: the complete environment the handler sees.
    The handler module is loaded on the first invocation (cold start) under a unique
    module name; modules it imports from its own CodeUri directory are kept private to it.
    """

    def __init__(self, spec: Function, *, name: str, arn: str, runtime_env: Mapping[str, str]) -> None:
        self.spec = spec
        self.logical_id = spec.logical_id
        self.name = name
        self.arn = arn
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}"
        env = {**spec.environment}
        env.setdefault("POWERTOOLS_METRICS_NAMESPACE", name)
        env.update(runtime_env)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group_name,
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream_name,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3.12'}",
                "LAMBDA_TASK_ROOT": str(spec.code_uri),
                "_HANDLER": spec.handler,
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        self.env: dict[str, str] = env
        safe_id = re.sub(r"[^0-9A-Za-z_]", "_", spec.logical_id)
        self.module_name = f"_sandbox_fn_{safe_id}_{next(_module_counter)}"
        self.handler: Callable[[Any, LambdaContext], Any] | None = None
        self._private_modules: dict[str, ModuleType] = {}

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """Environment, sys.path and private modules of this function, for the block.

        Callers hold the sandbox's invocation lock: both are process-global.
        """
        code_dir = str(self.spec.code_uri)
        host_env = {k: v for k, v in os.environ.items() if not k.startswith(_HOST_ENV_PREFIXES)}
        with _environ({**host_env, **self.env}):
            sys.path.insert(0, code_dir)
            sys.modules.update(self._private_modules)
            before = set(sys.modules) - set(self._private_modules)
            try:
                yield
            finally:
                with contextlib.suppress(ValueError):
                    sys.path.remove(code_dir)
                for name in set(sys.modules) - before:
                    module = sys.modules[name]
                    origin = getattr(module, "__file__", None) or ""
                    if name != self.module_name and os.path.abspath(origin).startswith(code_dir + os.sep):
                        self._private_modules[name] = sys.modules.pop(name)

    def load(self) -> Callable[[Any, LambdaContext], Any]:
        """Import the handler module once (inside :meth:`activated`); raise _InitError like the runtime."""
        if self.handler is not None:
            return self.handler
        module_label = self.spec.module
        path = self.spec.module_path
        spec = importlib.util.spec_from_file_location(self.module_name, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise _InitError(
                _error_document(
                    "Runtime.ImportModuleError",
                    f"Unable to import module '{module_label}': No module named '{module_label}'",
                )
            )
        module = importlib.util.module_from_spec(spec)
        sys.modules[self.module_name] = module
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:
            sys.modules.pop(self.module_name, None)
            raise _InitError(
                _error_document("Runtime.ImportModuleError", f"Unable to import module '{module_label}': {exc}")
            ) from exc
        except SyntaxError as exc:
            sys.modules.pop(self.module_name, None)
            trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
            raise _InitError(
                _error_document("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_label}': {exc}", trace)
            ) from exc
        except Exception as exc:
            sys.modules.pop(self.module_name, None)
            raise _InitError(_error_document(type(exc).__name__, str(exc), _stack(exc))) from exc
        handler = getattr(module, self.spec.attribute, None)
        if not callable(handler):
            raise _InitError(
                _error_document(
                    "Runtime.HandlerNotFound",
                    f"Handler '{self.spec.attribute}' missing on module '{module_label}'",
                )
            )
        self.handler = handler
        return handler

    def run(self, event: Any, request_id: str) -> InvocationResult:
        """Invoke the handler (inside :meth:`activated`) and marshal the result like the runtime."""
        started = time.monotonic()
        error: str | None = "Unhandled"
        try:
            handler = self.load()
            result = handler(event, LambdaContext(self, request_id))
        except _InitError as exc:
            payload = exc.document
        except Exception as exc:
            payload = _error_document(type(exc).__name__, str(exc), _stack(exc), request_id)
        except SystemExit as exc:
            payload = _error_document("Runtime.ExitError", f"RequestId: {request_id} Error: exit {exc.code}")
        else:
            try:
                payload = (
                    result
                    if isinstance(result, bytes)
                    else json.dumps(result, default=_json_default, ensure_ascii=False).encode()
                )
                error = None
            except (TypeError, ValueError) as exc:
                payload = _error_document("Runtime.MarshalError", f"Unable to marshal response: {exc}")
        duration_ms = (time.monotonic() - started) * 1000
        if duration_ms > self.spec.timeout * 1000:
            logger.warning(
                "%s %s ran %.0f ms, over its Timeout of %d s (Lambda would have stopped it)",
                self.name,
                request_id,
                duration_ms,
                self.spec.timeout,
            )
        return InvocationResult(request_id, payload, error, duration_ms)


def _stack(exc: BaseException) -> list[str]:
    """Formatted frames from the handler down (our own wrapper frame dropped), like awslambdaric."""
    frames = traceback.extract_tb(exc.__traceback__)
    here = os.path.abspath(__file__)
    return traceback.format_list([f for f in frames if os.path.abspath(f.filename) != here])


# ---------------------------------------------------------------------------------------------
# Resource creation (one small function per resource type)
# ---------------------------------------------------------------------------------------------

ResourceCreator = Callable[["Sandbox", Resource], Physical]
#: Resource type -> creator. Add a type by registering a function with :func:`creates`.
RESOURCE_CREATORS: dict[str, ResourceCreator] = {}
#: Types deliberately not emulated (no warning): they change nothing a local run can observe.
IGNORED_TYPES = {
    "AWS::S3::BucketPolicy",  # the TLS-only policy would deny moto's plain-http endpoint
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
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


def _suffix(length: int = 12) -> str:
    """Random suffix like CloudFormation's generated names (uppercase letters and digits)."""
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def _tags(props: Mapping[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: str(t["Key"]), value: str(t["Value"])} for t in props.get("Tags") or []]


@creates("AWS::KMS::Key")
def _create_kms_key(sandbox: Sandbox, resource: Resource) -> Physical:
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
        "Tags": _tags(props, "TagKey", "TagValue"),
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
def _create_kms_alias(sandbox: Sandbox, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    sandbox.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return Physical(ref=str(props["AliasName"]))


@creates("AWS::DynamoDB::Table")
def _create_table(sandbox: Sandbox, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    name = str(props.get("TableName") or f"{sandbox.stack_name}-{resource.logical_id}-{_suffix()}")
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
        kwargs["Tags"] = _tags(props)
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
def _create_bucket(sandbox: Sandbox, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    name = str(
        props.get("BucketName") or f"{sandbox.stack_name}-{resource.logical_id}".lower()[:50] + "-" + _suffix().lower()
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
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(props)})
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
def _create_topic(sandbox: Sandbox, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    fifo = str(props.get("FifoTopic", False)).lower() == "true"
    name = str(
        props.get("TopicName") or f"{sandbox.stack_name}-{resource.logical_id}-{_suffix()}" + (".fifo" if fifo else "")
    )
    attributes = {"FifoTopic": "true"} if fifo else {}
    sns = sandbox.client("sns")
    arn = sns.create_topic(Name=name, Attributes=attributes, Tags=_tags(props))["TopicArn"]
    for subscription in props.get("Subscription") or []:
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return Physical(ref=arn, attrs={"TopicArn": arn, "TopicName": name})


@creates("AWS::SNS::Subscription")
def _create_subscription(sandbox: Sandbox, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    arn = sandbox.client("sns").subscribe(
        TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"], ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    return Physical(ref=arn, attrs={"Arn": arn})


@creates("AWS::Serverless::LayerVersion")
def _create_layer(sandbox: Sandbox, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    content = props.get("ContentUri")
    if isinstance(content, str):
        layer_dir = (sandbox.template.root / content).resolve()
        python_dir = layer_dir / "python"  # the /opt/python layout, when the layer is pre-built
        sandbox.add_import_path(python_dir if python_dir.is_dir() else layer_dir)
    name = str(props.get("LayerName") or f"{sandbox.stack_name}-{resource.logical_id}")
    arn = f"arn:{sandbox.template.partition}:lambda:{sandbox.region}:{sandbox.account_id}:layer:{name}:1"
    return Physical(ref=arn, attrs={})


@creates("AWS::Serverless::Function")
def _create_function(sandbox: Sandbox, resource: Resource) -> Physical:
    function = sandbox.register_function(sandbox.template.function(resource.logical_id, sandbox.physical))
    return Physical(ref=function.name, attrs={"Arn": function.arn})


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


def _import_source_items(sandbox: Sandbox, source: Mapping[str, Any] | None) -> dict[str, str]:
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
def _create_key_value_store(sandbox: Sandbox, resource: Resource) -> Physical:
    """The store in moto's CloudFront control plane; its data plane is ``sandbox.kvs``."""
    props = sandbox.resolve(resource.properties)
    name = str(props.get("Name") or f"{sandbox.stack_name}-{resource.logical_id}-{_suffix()}")[:64]
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
def _create_connection_function(sandbox: Sandbox, resource: Resource) -> Physical:
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
        etag="E" + _suffix(13),
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


# ---------------------------------------------------------------------------------------------
# Event sources (pollers): DynamoDB streams, schedules (see events.py)
# ---------------------------------------------------------------------------------------------


class EventSource(Protocol):
    """A background poller feeding a function (DynamoDB stream, schedule, ...)."""

    def start(self) -> None:
        """Begin delivering events (returns at once; work happens in a thread)."""

    def stop(self) -> None:
        """Stop delivering and join the thread."""


EventSourceFactory = Callable[["Sandbox", LocalFunction, str, Mapping[str, Any]], EventSource]
#: SAM event ``Type`` ("DynamoDB", "Schedule", "ScheduleV2", ...) -> factory(sandbox, function,
#: event name, resolved Properties). A factory delivers events with ``sandbox.run_function``.
EVENT_SOURCES: dict[str, EventSourceFactory] = {
    "DynamoDB": DynamoDbStreamSource,
    "ScheduleV2": ScheduleSource,
    "Schedule": ScheduleSource,
}


# ---------------------------------------------------------------------------------------------
# WSGI front: intercepts Lambda Invoke, DescribeStacks, custom-resource responses
# ---------------------------------------------------------------------------------------------

StartResponse = Callable[..., Any]


def _respond(
    start_response: StartResponse, status: str, body: bytes, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    start_response(status, [("Content-Length", str(len(body))), *headers])
    return [body]


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so moto can read it again."""
    body = get_input_stream(environ).read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _lambda_error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return _respond(
        start_response,
        status,
        body,
        [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)],
    )


class _Front:
    """WSGI middleware in front of moto's DomainDispatcherApplication."""

    def __init__(self, sandbox: Sandbox, moto_app: Callable[..., Any]) -> None:
        self.sandbox = sandbox
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        method: str = environ.get("REQUEST_METHOD", "GET")
        try:
            if path.startswith(CFN_RESPONSE_PATH) and method == "PUT":
                return self._cfn_response(environ, start_response, path[len(CFN_RESPONSE_PATH) :])
            if path.startswith(SCHEDULES_PATH) and method == "POST":
                return self._schedule(start_response, path[len(SCHEDULES_PATH) :])
            if (path == KVS_PATH or path.startswith(KVS_PATH + "/")) and method == "GET":
                return self._kvs_contents(environ, start_response)
            if is_kvs_request(path, environ.get("HTTP_AUTHORIZATION", "")):
                return self._kvs_data_plane(environ, start_response, method)
            match = _INVOKE_RE.match(path)
            if match and method == "POST":
                function, qualifier = self.sandbox.lookup_function(match.group("name"))
                if function is not None:
                    return self._invoke(environ, start_response, function, qualifier)
            signing = _SIGNING_SERVICE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
            if signing and signing.group("service") == "cloudformation":
                body = _read_body(environ)
                params = parse_qs(environ.get("QUERY_STRING", "")) | parse_qs(body.decode("utf-8", "replace"))
                stack = (params.get("StackName") or [None])[0]
                if (params.get("Action") or [""])[0] == "DescribeStacks" and stack in (
                    None,
                    self.sandbox.stack_name,
                    self.sandbox.stack_id,
                ):
                    return _respond(
                        start_response,
                        "200 OK",
                        self.sandbox.describe_stacks_xml(),
                        [("Content-Type", "text/xml")],
                    )
        except Exception:
            logger.exception("sandbox front-end failed on %s %s", method, path)
            return _respond(start_response, "500 Internal Server Error", b'{"message": "sandbox error"}')
        return self.moto_app(environ, start_response)

    def _invoke(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        function: LocalFunction,
        qualifier: str | None,
    ) -> list[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        qualifier = (query.get("Qualifier") or [qualifier])[0]
        if qualifier not in (None, "$LATEST"):
            return _lambda_error(
                start_response,
                "404 Not Found",
                "ResourceNotFoundException",
                f"Function not found: {function.arn}:{qualifier} (the sandbox has only $LATEST)",
            )
        body = _read_body(environ)
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return _lambda_error(
                start_response,
                "400 Bad Request",
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}",
            )
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        if invocation_type == "DryRun":
            return _respond(start_response, "204 No Content", b"")
        if invocation_type == "Event":
            request_id = self.sandbox.run_function_async(function.logical_id, event)
            return _respond(start_response, "202 Accepted", b"", [("x-amzn-RequestId", request_id)])
        if invocation_type != "RequestResponse":
            return _lambda_error(
                start_response,
                "400 Bad Request",
                "InvalidParameterValueException",
                f"Unsupported InvocationType {invocation_type}",
            )
        try:
            result = self.sandbox.run_function(function.logical_id, event)
        except _Busy as exc:
            return _lambda_error(start_response, "429 Too Many Requests", "TooManyRequestsException", str(exc))
        headers = [
            ("Content-Type", "application/json"),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("x-amzn-RequestId", result.request_id),
        ]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        return _respond(start_response, "200 OK", result.payload, headers)

    def _schedule(self, start_response: StartResponse, rest: str) -> list[bytes]:
        """``POST /__sandbox__/schedules/{FunctionLogicalId}[/{EventName}]``: run a schedule now.

        Answers like Lambda Invoke: 200 with the function's payload (``X-Amz-Function-Error``
        when it failed); 404 for an unknown function or schedule.
        """
        logical_id, _, event_name = rest.strip("/").partition("/")
        try:
            result = self.sandbox.trigger_schedule(unquote(logical_id), unquote(event_name) or None)
        except SandboxError as exc:
            return _lambda_error(start_response, "404 Not Found", "ResourceNotFoundException", str(exc))
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", result.request_id)]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        return _respond(start_response, "200 OK", result.payload, headers)

    def _kvs_contents(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """``GET /__sandbox__/kvs[/{url-encoded KvsARN}]``: what the emulated stores hold (JSON)."""
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "")))
        rest = raw.split("?", 1)[0][len(KVS_PATH) :].strip("/")
        kvs = self.sandbox.kvs
        arns = [unquote(rest)] if rest else kvs.stores()
        stores = {}
        for arn in arns:
            try:
                stores[arn] = {"ETag": kvs.etag(arn), "Items": kvs.items(arn)}
            except KeyError:
                return _lambda_error(start_response, "404 Not Found", "ResourceNotFoundException", f"no store {arn}")
        body = json.dumps(stores[arns[0]] | {"KvsARN": arns[0]} if rest else {"stores": stores}).encode()
        return _respond(start_response, "200 OK", body, [("Content-Type", "application/json")])

    def _kvs_data_plane(self, environ: dict[str, Any], start_response: StartResponse, method: str) -> list[bytes]:
        """A ``cloudfront-keyvaluestore`` request from another process: the emulator answers."""
        body = _read_body(environ)
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "")))
        if "?" not in raw and environ.get("QUERY_STRING"):
            raw += "?" + environ["QUERY_STRING"]
        headers = {
            key[5:].replace("_", "-").title(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
        }
        status, response_headers, payload = self.sandbox.kvs.handle(method, raw, headers, body)
        reason = {200: "OK", 400: "Bad Request", 402: "Payment Required", 404: "Not Found", 409: "Conflict"}
        return _respond(
            start_response, f"{status} {reason.get(status, 'Error')}", payload, list(response_headers.items())
        )

    def _cfn_response(self, environ: dict[str, Any], start_response: StartResponse, request_id: str) -> list[bytes]:
        pending = self.sandbox._pending_responses.get(request_id)
        body = _read_body(environ)
        if pending is None:
            return _respond(start_response, "403 Forbidden", b"unknown or expired ResponseURL")
        pending.deliver(body)
        return _respond(start_response, "200 OK", b"")


class _QuietRequestHandler(MotoRequestHandler):
    """moto's request handler, logging requests at DEBUG instead of printing them."""

    def log(self, type: str, message: str, *args: Any) -> None:
        logger.log(logging.WARNING if type == "error" else logging.DEBUG, message, *args)


@dataclass
class _PendingResponse:
    """A custom-resource request waiting for its PUT to the ResponseURL."""

    done: threading.Event = field(default_factory=threading.Event)
    body: bytes = b""

    def deliver(self, body: bytes) -> None:
        if not self.done.is_set():
            self.body = body
            self.done.set()


# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------


def _stack_name_from_samconfig(repo_root: Path) -> str:
    """``[default.global.parameters] stack_name`` of samconfig.toml, else "sandbox"."""
    try:
        config = tomllib.loads((repo_root / "samconfig.toml").read_text(encoding="utf-8"))
        return str(config["default"]["global"]["parameters"]["stack_name"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "sandbox"


class Sandbox:
    """AWS emulation for one template on ``http://host:port`` (context manager).

    ``repo_root``: directory with ``template.yaml`` (and samconfig.toml); ``port``: 0 picks a
    free port; ``parameter_overrides``: template parameters, e.g. {"IssuingCaKeySpec": "RSA_2048"}.
    After :meth:`start`: ``endpoint_url``, ``physical`` (logical id -> Physical),
    ``functions`` (logical id -> LocalFunction), ``outputs`` (key -> value),
    ``kvs`` (the KeyValueStore emulator: ``sandbox.kvs.items(arn)``),
    ``connection_functions`` (logical id -> ConnectionFunction), ``schedules``
    ((function, event) -> ScheduleSource; run one with :meth:`trigger_schedule`).
    ``run_schedules``: fire ``rate()`` schedules on a timer too (default: only on demand).
    DynamoDB stream events are delivered by pollers started after the resources exist.
    """

    _active = 0
    _active_lock = threading.Lock()
    #: Whether a sandbox installed the KVS emulator (then the last one to stop uninstalls it).
    _kvs_installed_by_sandbox = False
    #: One invocation at a time in the whole process: os.environ and sys.path are process-global.
    _invoke_lock = threading.Lock()

    def __init__(
        self,
        repo_root: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "eu-west-1",
        stack_name: str | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        *,
        template: str | Path = "template.yaml",
        run_schedules: bool = False,
    ) -> None:
        self.repo_root = Path(repo_root).resolve()
        self.template_path = self.repo_root / template
        self.host = host
        self.port = port
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self.stack_name = stack_name or _stack_name_from_samconfig(self.repo_root)
        self.stack_id = f"arn:aws:cloudformation:{region}:{self.account_id}:stack/{self.stack_name}/{uuid.uuid4()}"
        self.parameter_overrides = dict(parameter_overrides or {})
        self.template: Template
        self.physical: dict[str, Physical] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.outputs: dict[str, str] = {}
        self._output_specs: dict[str, Output] = {}
        self._names: dict[str, LocalFunction] = {}
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._async_threads: list[threading.Thread] = []
        self._pending_responses: dict[str, _PendingResponse] = {}
        self._event_sources: dict[str, EventSource] = {}
        #: (function logical id, event name) -> schedule; see :meth:`trigger_schedule`.
        self.schedules: dict[tuple[str, str], ScheduleSource] = {}
        #: Fire ``rate()`` schedules on a timer (off by default: run them with trigger_schedule).
        self.run_schedules = run_schedules
        #: Logical id -> the template's CloudFront connection functions (recorded, not executed).
        self.connection_functions: dict[str, ConnectionFunction] = {}
        #: The KeyValueStore data-plane emulator (installed in this process while running).
        self.kvs: KvsEmulator = installed_kvs_emulator() or KvsEmulator()
        self._import_paths: list[str] = []
        self._clients: dict[tuple[str, str], Any] = {}
        self._created_at = datetime.now(UTC)
        self._counted = False

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` of the running sandbox."""
        if self._server is None:
            raise SandboxError("the sandbox is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._server.server_address[1]}"

    def start(self) -> Sandbox:
        """Serve, create the template's resources, run custom resources; raise SandboxError on failure."""
        if self._server is not None:
            return self
        self.physical, self.functions, self._names, self.outputs = {}, {}, {}, {}
        self.connection_functions, self.schedules = {}, {}
        try:
            self.template = Template(
                self.template_path,
                stack_name=self.stack_name,
                region=self.region,
                account_id=self.account_id,
                parameter_overrides=self.parameter_overrides,
                stack_id=self.stack_id,
            )
        except TemplateError as exc:
            raise SandboxError(str(exc)) from exc
        patch_moto_kms()
        patch_moto_acm()
        patch_moto_dynamodb()
        app = _Front(self, DomainDispatcherApplication(create_backend_app))
        # Bind ourselves: werkzeug prints and calls sys.exit(1) when the port is taken.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(128)
            server = make_server(
                self.host,
                listener.getsockname()[1],
                app,
                threaded=True,
                request_handler=_QuietRequestHandler,
                fd=listener.fileno(),
            )
        except OSError as exc:
            raise SandboxError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        finally:
            listener.close()  # the server keeps its own duplicate of the socket
        with Sandbox._active_lock:
            if Sandbox._active == 0:
                _reset_moto()
            if installed_kvs_emulator() is None:
                Sandbox._kvs_installed_by_sandbox = True
            self.kvs = install_kvs_emulator(self.kvs)
            if Sandbox._active == 0:
                self.kvs.reset()
            Sandbox._active += 1
            self._counted = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-server", daemon=True
        )
        self._thread.start()
        try:
            self._create_resources()
            self._output_specs = self.template.outputs(self.physical)
            self.outputs = {key: output.value for key, output in self._output_specs.items()}
            self._start_event_sources()
        except BaseException:
            self.stop()
            raise
        logger.info("sandbox for stack %s listening on %s", self.stack_name, self.endpoint_url)
        return self

    def stop(self) -> None:
        """Stop pollers and the server, wait for running invocations, release the port. Idempotent."""
        for source in reversed(list(self._event_sources.values())):
            with contextlib.suppress(Exception):
                source.stop()
        self._event_sources.clear()
        if self._server is not None:
            self._server.shutdown()
            if self._thread is not None:
                self._thread.join()
            self._server.server_close()
        for thread in self._async_threads:
            thread.join(timeout=max((f.spec.timeout for f in self.functions.values()), default=3))
        self._async_threads.clear()
        for path in self._import_paths:
            with contextlib.suppress(ValueError):
                sys.path.remove(path)
        self._import_paths.clear()
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        self._server = None
        self._thread = None
        if self._counted:
            with Sandbox._active_lock:
                Sandbox._active -= 1
                if Sandbox._active == 0:
                    _reset_moto()
                    self.kvs.reset()
                    if Sandbox._kvs_installed_by_sandbox:
                        uninstall_kvs_emulator()
                        Sandbox._kvs_installed_by_sandbox = False
            self._counted = False

    # -- clients and environment -----------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment a client process needs: AWS_ENDPOINT_URL, region, dummy credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **DUMMY_CREDENTIALS,
        }

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for ``service`` against the sandbox (cached; no retries, long read timeout)."""
        key = (service, region or self.region)
        if key not in self._clients:
            self._clients[key] = boto3.session.Session(
                aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=key[1],
            ).client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                config=Config(read_timeout=900, retries={"total_max_attempts": 1}),
            )
        return self._clients[key]

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions in ``value`` against what the sandbox has created so far."""
        try:
            return self.template.resolve(value, self.physical)
        except TemplateError as exc:
            raise SandboxError(str(exc)) from exc

    def add_import_path(self, path: Path) -> None:
        """Put a directory (e.g. a layer's content) on sys.path until :meth:`stop`."""
        text = str(path)
        if text not in sys.path:
            sys.path.insert(0, text)
            self._import_paths.append(text)

    @property
    def function_names(self) -> dict[str, str]:
        """Logical id -> physical function name."""
        return {lid: f.name for lid, f in self.functions.items()}

    # -- resources --------------------------------------------------------------------------------

    def _create_resources(self) -> None:
        try:
            order = self.template.creation_order()
        except TemplateError as exc:
            raise SandboxError(str(exc)) from exc
        for logical_id in order:
            resource = self.template.resources[logical_id]
            creator = RESOURCE_CREATORS.get(resource.type)
            try:
                if resource.is_custom_resource:
                    physical = self._create_custom_resource(resource)
                elif creator is not None:
                    physical = creator(self, resource)
                else:
                    if resource.type not in IGNORED_TYPES:
                        logger.warning("%s (%s) is not emulated by the sandbox", logical_id, resource.type)
                    physical = Physical(ref=f"{self.stack_name}-{logical_id}")
            except SandboxError:
                raise
            except Exception as exc:
                raise SandboxError(f"cannot create {logical_id} ({resource.type}): {exc}") from exc
            self.physical[logical_id] = physical
            logger.info("created %s (%s): %s", logical_id, resource.type, physical.ref)

    def register_function(self, spec: Function) -> LocalFunction:
        """Make a template function invocable by name and ARN (called by the function creator)."""
        name = spec.function_name or f"{self.stack_name}-{spec.logical_id}"
        arn = f"arn:{self.template.partition}:lambda:{self.region}:{self.account_id}:function:{name}"
        runtime_env = {
            **self.env(),
            "AWS_SESSION_TOKEN": "testing",
        }
        function = LocalFunction(spec, name=name, arn=arn, runtime_env=runtime_env)
        self.functions[spec.logical_id] = function
        self._names[name] = function
        return function

    def lookup_function(self, name_or_arn: str) -> tuple[LocalFunction | None, str | None]:
        """(function, qualifier) for a name, full/partial ARN, or name:qualifier; (None, None) if not ours."""
        parts = name_or_arn.split(":")
        if name_or_arn.startswith("arn:") and len(parts) >= 7:
            name, qualifier = parts[6], (parts[7] if len(parts) > 7 else None)
        elif len(parts) >= 3 and parts[1] == "function":
            name, qualifier = parts[2], (parts[3] if len(parts) > 3 else None)
        elif len(parts) == 2:
            name, qualifier = parts
        else:
            name, qualifier = name_or_arn, None
        function = self._names.get(name)
        return (function, qualifier) if function else (None, None)

    def _create_custom_resource(self, resource: Resource) -> Physical:
        """Send Create to the ServiceToken function as CloudFormation does; wait for the PUT."""
        props = stringify(self.resolve(resource.properties))
        token = props.get("ServiceToken")
        function, _ = self.lookup_function(str(token or ""))
        if function is None:
            raise SandboxError(
                f"{resource.logical_id}: ServiceToken {token!r} is not a function of this sandbox "
                "(only Lambda-backed custom resources are emulated)"
            )
        request_id = str(uuid.uuid4())
        pending = self._pending_responses[request_id] = _PendingResponse()
        event = {
            "RequestType": "Create",
            "ServiceToken": token,
            "ResponseURL": f"{self.endpoint_url}{CFN_RESPONSE_PATH}{request_id}",
            "StackId": self.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": resource.logical_id,
            "ResourceType": resource.type,
            "ResourceProperties": props,
        }
        outcome: dict[str, InvocationResult] = {}

        def call() -> None:
            outcome["result"] = self.run_function(function.logical_id, event, wait=3600)

        worker = threading.Thread(target=call, name=f"cfn-{resource.logical_id}", daemon=True)
        worker.start()
        timeout = float(props.get("ServiceTimeout") or 3600)
        deadline = time.monotonic() + timeout
        try:
            while not pending.done.wait(0.05):
                if not worker.is_alive() and not pending.done.is_set():
                    result = outcome.get("result")
                    if result is not None and result.function_error:
                        error = result.json() or {}
                        raise SandboxError(
                            f"{resource.logical_id} ({resource.type}): {function.name} failed without "
                            f"responding: {error.get('errorType')}: {error.get('errorMessage')}"
                        )
                    raise SandboxError(
                        f"{resource.logical_id} ({resource.type}): {function.name} returned without "
                        "sending a response to the ResponseURL"
                    )
                if time.monotonic() > deadline:
                    raise SandboxError(f"{resource.logical_id} ({resource.type}): no response within {timeout:.0f} s")
        finally:
            del self._pending_responses[request_id]
        worker.join(timeout=function.spec.timeout)
        return self._custom_resource_outcome(resource, event, pending.body)

    @staticmethod
    def _custom_resource_outcome(resource: Resource, event: Mapping[str, Any], body: bytes) -> Physical:
        """Check the response like CloudFormation; FAILED -> SandboxError with the Reason."""
        where = f"{resource.logical_id} ({resource.type})"
        if len(body) > _MAX_CFN_RESPONSE_BYTES:
            raise SandboxError(f"{where}: response is {len(body)} bytes, over CloudFormation's 4096")
        try:
            response = json.loads(body)
        except ValueError as exc:
            raise SandboxError(f"{where}: response is not JSON: {exc}") from exc
        for key in ("StackId", "RequestId", "LogicalResourceId"):
            if response.get(key) != event[key]:
                raise SandboxError(f"{where}: response {key} {response.get(key)!r} does not match the request")
        status = response.get("Status")
        if status == "FAILED":
            raise SandboxError(f"{where} failed: {response.get('Reason') or '(no Reason given)'}")
        if status != "SUCCESS":
            raise SandboxError(f"{where}: response Status {status!r} is neither SUCCESS nor FAILED")
        if not response.get("PhysicalResourceId"):
            raise SandboxError(f"{where}: response has no PhysicalResourceId")
        data = response.get("Data") or {}
        if not isinstance(data, dict):
            raise SandboxError(f"{where}: response Data is not an object")
        return Physical(ref=str(response["PhysicalResourceId"]), attrs=data)

    def _start_event_sources(self) -> None:
        for function in self.functions.values():
            for event_name, event in function.spec.events.items():
                kind = str(event.get("Type"))
                factory = EVENT_SOURCES.get(kind)
                if factory is None:
                    logger.info("%s event %s (%s) is not emulated yet", function.logical_id, event_name, kind)
                    continue
                try:
                    source = factory(self, function, event_name, self.resolve(event.get("Properties") or {}))
                    source.start()
                except (FilterError, ValueError) as exc:
                    raise SandboxError(f"{function.logical_id} event {event_name} ({kind}): {exc}") from exc
                self._event_sources[f"{function.logical_id}.{event_name}"] = source
                if isinstance(source, ScheduleSource):
                    self.schedules[(function.logical_id, event_name)] = source

    @property
    def event_sources(self) -> dict[str, EventSource]:
        """ "<FunctionLogicalId>.<EventName>" -> running event source (stream pollers, schedules)."""
        return dict(self._event_sources)

    def trigger_schedule(self, logical_id: str, event_name: str | None = None) -> InvocationResult:
        """Run a function's schedule (``ScheduleV2``/``Schedule`` event) now, as the scheduler would:
        the function gets the event's ``Input`` (parsed JSON). ``event_name`` may be omitted when
        the function has one schedule. Returns the :class:`InvocationResult` (check
        ``function_error`` or call ``raise_for_error()``); no retries.

        Raises:
            SandboxError: unknown function, no such schedule, or several and none named.
        """
        if logical_id not in self.functions:
            raise SandboxError(f"no function {logical_id} in the sandbox (has {sorted(self.functions)})")
        candidates = {name: source for (lid, name), source in self.schedules.items() if lid == logical_id}
        if not candidates:
            raise SandboxError(f"{logical_id} has no schedule event")
        if event_name is None:
            if len(candidates) > 1:
                raise SandboxError(f"{logical_id} has several schedules; name one of {sorted(candidates)}")
            (source,) = candidates.values()
        elif event_name in candidates:
            source = candidates[event_name]
        else:
            raise SandboxError(f"{logical_id} has no schedule event {event_name} (has {sorted(candidates)})")
        return source.fire()

    # -- invocations -------------------------------------------------------------------------------

    def run_function(
        self, logical_id: str, event: Any, *, wait: float | None = None, request_id: str | None = None
    ) -> InvocationResult:
        """Invoke a function in-process (no HTTP). Serialised; waits up to ``wait`` s (default: its Timeout).

        Raises _Busy (-> 429 on the HTTP API) when the lock stays taken longer.
        """
        function = self.functions[logical_id]
        limit = function.spec.timeout if wait is None else wait
        if not self._invoke_lock.acquire(timeout=limit):
            raise _Busy(
                f"{function.name}: another invocation held the sandbox for {limit} s "
                "(the sandbox runs one invocation at a time)"
            )
        try:
            request_id = request_id or str(uuid.uuid4())
            with function.activated():
                result = function.run(event, request_id)
        finally:
            self._invoke_lock.release()
        if result.function_error:
            error = result.json() or {}
            logger.info(
                "%s %s failed in %.0f ms: %s", function.name, request_id, result.duration_ms, error.get("errorType")
            )
        else:
            logger.info("%s %s succeeded in %.0f ms", function.name, request_id, result.duration_ms)
        return result

    def run_function_async(self, logical_id: str, event: Any) -> str:
        """Invoke in a background thread (InvocationType=Event); returns a request id at once."""
        request_id = str(uuid.uuid4())

        def call() -> None:
            try:
                self.run_function(logical_id, event, wait=3600, request_id=request_id)
            except Exception:
                logger.exception("asynchronous invocation of %s failed", logical_id)

        thread = threading.Thread(target=call, name=f"event-{logical_id}", daemon=True)
        self._async_threads = [t for t in self._async_threads if t.is_alive()]
        self._async_threads.append(thread)
        thread.start()
        return request_id

    def invoke(self, logical_id: str, payload: Any = None, *, invocation_type: str = "RequestResponse") -> Any:
        """Invoke a function through the Lambda API (boto3 -> HTTP -> handler), as a client would.

        Returns the decoded response payload (None for Event), or raises :class:`FunctionError`
        whose ``error_type`` is the exception class name the handler raised.
        """
        response = self.client("lambda").invoke(
            FunctionName=self.functions[logical_id].name,
            InvocationType=invocation_type,
            Payload=json.dumps(payload if payload is not None else {}).encode(),
        )
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise FunctionError(json.loads(body))
        return json.loads(body) if body else None

    # -- CloudFormation view ----------------------------------------------------------------------

    def describe_stacks_xml(self) -> bytes:
        """CloudFormation DescribeStacks response (query protocol XML) for this stack."""
        parameters = "".join(
            "<member><ParameterKey>{}</ParameterKey><ParameterValue>{}</ParameterValue></member>".format(
                escape(name),
                "****" if spec.get("NoEcho") else escape(_param_text(self.template.parameters[name])),
            )
            for name, spec in self.template.parameter_specs.items()
        )
        outputs = "".join(
            "<member><OutputKey>{}</OutputKey><OutputValue>{}</OutputValue>{}{}</member>".format(
                escape(o.key),
                escape(o.value),
                f"<Description>{escape(o.description)}</Description>" if o.description else "",
                f"<ExportName>{escape(o.export_name)}</ExportName>" if o.export_name else "",
            )
            for o in self._output_specs.values()
        )
        created = self._created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        description = (
            f"<Description>{escape(self.template.description)}</Description>" if self.template.description else ""
        )
        return (
            '<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
            "<DescribeStacksResult><Stacks><member>"
            f"<StackId>{escape(self.stack_id)}</StackId>"
            f"<StackName>{escape(self.stack_name)}</StackName>"
            f"{description}"
            f"<Parameters>{parameters}</Parameters>"
            f"<CreationTime>{created}</CreationTime>"
            "<StackStatus>CREATE_COMPLETE</StackStatus>"
            "<DisableRollback>false</DisableRollback>"
            "<NotificationARNs/>"
            "<Capabilities><member>CAPABILITY_IAM</member><member>CAPABILITY_AUTO_EXPAND</member></Capabilities>"
            f"<Outputs>{outputs}</Outputs>"
            "<Tags/>"
            "<EnableTerminationProtection>false</EnableTerminationProtection>"
            "<DriftInformation><StackDriftStatus>NOT_CHECKED</StackDriftStatus></DriftInformation>"
            "</member></Stacks></DescribeStacksResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</DescribeStacksResponse>"
        ).encode()

    def state(self) -> dict[str, Any]:
        """JSON-ready summary: endpoint_url, region, stack_name, functions (logical id -> name),
        outputs, key_value_stores (logical id -> ARN), connection_functions (logical id ->
        {name, arn, id, runtime, stage, key_value_store_arns, code}), schedules (function logical
        id -> event names)."""
        schedules: dict[str, list[str]] = {}
        for logical_id, event_name in self.schedules:
            schedules.setdefault(logical_id, []).append(event_name)
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "stack_name": self.stack_name,
            "functions": self.function_names,
            "outputs": dict(self.outputs),
            "key_value_stores": {
                r.logical_id: self.physical[r.logical_id].attrs["Arn"]
                for r in self.template.of_type("AWS::CloudFront::KeyValueStore")
                if r.logical_id in self.physical
            },
            "connection_functions": {lid: f.summary() for lid, f in self.connection_functions.items()},
            "schedules": schedules,
        }


def _param_text(value: Any) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


def _reset_moto() -> None:
    """Forget every moto resource in this process (as mock_aws does on entry/exit)."""
    from moto.moto_api import _internal

    _internal.moto_api_backend.reset()
