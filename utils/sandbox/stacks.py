"""Stacks besides the sandbox's own: nested applications and templates deployed into other accounts.

- **Nested applications.** ``AWS::Serverless::Application`` (and ``AWS::CloudFormation::Stack``)
  with a local ``Location`` (a template path relative to the parent template, as ``sam build`` /
  ``sam package`` take it; they upload it and put its S3 URL in place) is deployed in the
  parent's account and region with the resolved ``Parameters``; ``!GetAtt Child.Outputs.Key``
  gives the child's output. An S3 URL or a Serverless Application Repository application is
  refused: the sandbox has no copy of it.
- **Stacks in other accounts.** :class:`ChildStack` also deploys a template into a workload
  account, as that account's administrator (``Sandbox.deploy_stack``).

A child stack creates the resource types of :mod:`.resources` and :mod:`.identities` (KMS,
S3, DynamoDB, SNS, SQS, CloudFront KeyValueStores and connection functions, IAM roles and
policies, nested stacks); functions and custom resources in a child stack are refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from xml.sax.saxutils import escape

from .context import SandboxError, StackContext
from .kvs import KvsEmulator
from .resources import IGNORED_TYPES, RESOURCE_CREATORS, creates, random_suffix
from .runtime import InvocationResult, LocalFunction
from .template import Output, Physical, Resource, Template, TemplateError, stringify

__all__ = ["ChildStack", "StackHost", "describe_stacks_xml"]


class StackHost(StackContext, Protocol):
    """What a child stack needs of the sandbox: administrator clients per account, the stack registry."""

    stacks: dict[str, ChildStack]

    def admin_client(self, service: str, account_id: str | None = None, region: str | None = None) -> Any:
        """A boto3 client of ``account_id``'s administrator."""


class ChildStack:
    """One stack created from ``template_path`` in ``account_id`` (the sandbox's region).

    After :meth:`deploy`: ``physical``, ``outputs`` (key -> value), ``connection_functions``
    (logical id -> :class:`~utils.sandbox.resources.ConnectionFunction`; a nested stack shares its
    parent's dict, the connection functions being the account's). Implements :class:`StackContext`
    for the resource creators.
    """

    def __init__(
        self,
        host: StackHost,
        template_path: str | Path,
        *,
        account_id: str,
        stack_name: str,
        parameters: Mapping[str, Any] | None = None,
        connection_functions: dict[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.region = host.region
        self.account_id = account_id
        self.stack_name = stack_name
        self.stack_id = f"arn:aws:cloudformation:{self.region}:{account_id}:stack/{stack_name}/{uuid.uuid4()}"
        overrides = {str(k): _parameter_text(v) for k, v in (parameters or {}).items()}
        #: The parameters given (as CloudFormation received them; NoEcho ones too: a sandbox).
        self.parameters = overrides
        try:
            self.template = Template(
                Path(template_path),
                stack_name=stack_name,
                region=self.region,
                account_id=account_id,
                parameter_overrides=overrides,
                stack_id=self.stack_id,
            )
        except TemplateError as exc:
            raise SandboxError(f"stack {stack_name}: {exc}") from exc
        self.physical: dict[str, Physical] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.outputs: dict[str, str] = {}
        self.output_specs: dict[str, Output] = {}
        self.connection_functions: dict[str, Any] = {} if connection_functions is None else connection_functions
        self.sam_roles: dict[str, dict[str, Any]] = {}
        self.run_schedules = False
        self.kvs: KvsEmulator = host.kvs
        self.created_at = datetime.now(UTC)

    # -- StackContext -------------------------------------------------------------------------------

    @property
    def stacks(self) -> dict[str, ChildStack]:
        return self.host.stacks

    @property
    def endpoint_url(self) -> str:
        return self.host.endpoint_url

    def client(self, service: str, region: str | None = None) -> Any:
        """A client of this stack's account administrator (CloudFormation's stand-in)."""
        return self.host.admin_client(service, account_id=self.account_id, region=region)

    def admin_client(self, service: str, account_id: str | None = None, region: str | None = None) -> Any:
        return self.host.admin_client(service, account_id=account_id or self.account_id, region=region)

    def function_client(self, logical_id: str, service: str) -> Any:
        raise SandboxError(f"stack {self.stack_name} has no functions")

    def resolve(self, value: Any) -> Any:
        try:
            return self.template.resolve(value, self.physical)
        except TemplateError as exc:
            raise SandboxError(f"stack {self.stack_name}: {exc}") from exc

    def register_function(self, function: LocalFunction) -> None:
        raise SandboxError(f"stack {self.stack_name}: functions are emulated in the sandbox's own stack only")

    def lookup_function(self, name_or_arn: str) -> tuple[LocalFunction | None, str | None]:
        return None, None

    def run_function(
        self, logical_id: str, event: Any, *, wait: float | None = None, request_id: str | None = None
    ) -> InvocationResult:
        raise SandboxError(f"stack {self.stack_name} has no functions")

    def runtime_env(self) -> Mapping[str, str]:
        return self.host.runtime_env()

    # -- deployment ---------------------------------------------------------------------------------

    def deploy(self) -> dict[str, str]:
        """Create every resource in dependency order; return the outputs.

        Raises:
            SandboxError: a resource cannot be created (functions and custom resources cannot).
        """
        try:
            order = self.template.creation_order()
        except TemplateError as exc:
            raise SandboxError(f"stack {self.stack_name}: {exc}") from exc
        for logical_id in order:
            self.physical[logical_id] = self._create(self.template.resources[logical_id])
        try:
            self.output_specs = self.template.outputs(self.physical)
        except TemplateError as exc:
            raise SandboxError(f"stack {self.stack_name}: {exc}") from exc
        self.outputs = {key: output.value for key, output in self.output_specs.items()}
        return dict(self.outputs)

    def _create(self, resource: Resource) -> Physical:
        creator = RESOURCE_CREATORS.get(resource.type)
        if resource.is_custom_resource or resource.type == "AWS::Serverless::Function":
            raise SandboxError(f"stack {self.stack_name}: {resource.logical_id} ({resource.type}) is not supported")
        if creator is None:
            if resource.type not in IGNORED_TYPES:
                raise SandboxError(f"stack {self.stack_name}: {resource.logical_id} ({resource.type}) is not emulated")
            return Physical(ref=f"{self.stack_name}-{resource.logical_id}")
        try:
            return creator(self, resource)
        except SandboxError:
            raise
        except Exception as exc:
            raise SandboxError(f"stack {self.stack_name}: cannot create {resource.logical_id}: {exc}") from exc


def _parameter_text(value: Any) -> str:
    """A parameter value as CloudFormation passes it to a stack: lists comma-joined."""
    value = stringify(value)
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


@creates("AWS::Serverless::Application", "AWS::CloudFormation::Stack")
def _create_nested_stack(sandbox: StackContext, resource: Resource) -> Physical:
    """A nested stack in the parent's account; ``!GetAtt <id>.Outputs.<Key>`` gives its outputs."""
    host: Any = sandbox
    if not hasattr(host, "stacks") or not hasattr(host, "admin_client"):
        raise SandboxError(f"{resource.logical_id}: nested stacks need the sandbox's stack registry")
    props = sandbox.resolve(resource.properties)
    location = props.get("Location") if resource.type == "AWS::Serverless::Application" else props.get("TemplateURL")
    if not isinstance(location, str) or "://" in location:
        raise SandboxError(
            f"{resource.logical_id}: only a local template path can be nested in the sandbox (got {location!r})"
        )
    path = (sandbox.template.root / location).resolve()
    if not path.is_file():
        raise SandboxError(f"{resource.logical_id}: no template at {path}")
    name = f"{sandbox.stack_name}-{resource.logical_id}-{random_suffix()}"[:128]
    child = ChildStack(
        host,
        path,
        account_id=sandbox.account_id,
        stack_name=name,
        parameters=props.get("Parameters") or {},
        connection_functions=sandbox.connection_functions,
    )
    host.stacks[name] = child
    outputs = child.deploy()
    return Physical(ref=child.stack_id, attrs={f"Outputs.{key}": value for key, value in outputs.items()})


def describe_stacks_xml(
    *,
    stack_id: str,
    stack_name: str,
    template: Template,
    outputs: Mapping[str, Output],
    created: datetime,
) -> bytes:
    """CloudFormation DescribeStacks response (query protocol XML) for one stack (NoEcho shown as ****)."""
    parameters = "".join(
        "<member><ParameterKey>{}</ParameterKey><ParameterValue>{}</ParameterValue></member>".format(
            escape(name),
            "****" if spec.get("NoEcho") else escape(_parameter_text(template.parameters[name])),
        )
        for name, spec in template.parameter_specs.items()
    )
    rendered = "".join(
        "<member><OutputKey>{}</OutputKey><OutputValue>{}</OutputValue>{}{}</member>".format(
            escape(o.key),
            escape(o.value),
            f"<Description>{escape(o.description)}</Description>" if o.description else "",
            f"<ExportName>{escape(o.export_name)}</ExportName>" if o.export_name else "",
        )
        for o in outputs.values()
    )
    description = f"<Description>{escape(template.description)}</Description>" if template.description else ""
    return (
        '<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
        "<DescribeStacksResult><Stacks><member>"
        f"<StackId>{escape(stack_id)}</StackId>"
        f"<StackName>{escape(stack_name)}</StackName>"
        f"{description}"
        f"<Parameters>{parameters}</Parameters>"
        f"<CreationTime>{created.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}</CreationTime>"
        "<StackStatus>CREATE_COMPLETE</StackStatus>"
        "<DisableRollback>false</DisableRollback>"
        "<NotificationARNs/>"
        "<Capabilities><member>CAPABILITY_IAM</member><member>CAPABILITY_AUTO_EXPAND</member></Capabilities>"
        f"<Outputs>{rendered}</Outputs>"
        "<Tags/>"
        "<EnableTerminationProtection>false</EnableTerminationProtection>"
        "<DriftInformation><StackDriftStatus>NOT_CHECKED</StackDriftStatus></DriftInformation>"
        "</member></Stacks></DescribeStacksResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</DescribeStacksResponse>"
    ).encode()
