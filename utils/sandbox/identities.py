"""Who does what in the sandbox: function roles from the SAM transform, the operator and the admin.

- **Function roles.** SAM turns a function's ``Policies`` (inline statements and SAM policy
  templates alike), its event sources (``AWSLambdaDynamoDBExecutionRole`` for a stream) and the
  ``Globals`` into an ``AWS::IAM::Role`` named ``<FunctionLogicalId>Role``. :func:`sam_roles`
  runs the real SAM translator (``aws-sam-translator``, the library ``sam build`` and
  CloudFormation use) on the template and keeps those roles; :func:`create_function_role`
  creates one in moto's IAM with its inline and managed policies, and
  :func:`lambda_role_session` assumes it as the Lambda service would, so each function's
  worker holds temporary credentials of its own role and nothing else.
- **Template IAM resources**: ``AWS::IAM::Role``, ``AWS::IAM::ManagedPolicy`` and
  ``AWS::IAM::Policy`` are created as declared (the operator policies are managed policies).
- **Principals of the sandbox itself**: an administrator user (what CloudFormation and the
  sandbox's own pollers act as) and an operator user whose only permissions are the template's
  managed policies (what the operator tools, the demo and the tests' CLIs act as).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .context import SandboxError, StackContext
from .resources import creates, random_suffix
from .runtime import LocalFunction
from .template import NO_VALUE, Physical, Resource, Template

__all__ = [
    "Principal",
    "add_sam_role_resources",
    "create_function_role",
    "create_principal",
    "create_root_principal",
    "lambda_role_session",
    "sam_roles",
]

#: Inline policy of the sandbox administrator (CloudFormation's role, the sandbox's own pollers).
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class _NoManagedPolicies:
    """The SAM translator's managed-policy loader: SAM policy names resolved without an AWS call."""

    def load(self) -> dict[str, str]:
        return {}


def sam_roles(raw_template: Mapping[str, Any], region: str) -> dict[str, dict[str, Any]]:
    """Function logical id -> the ``AWS::IAM::Role`` resource SAM generates for it (unresolved).

    Functions with an explicit ``Role`` get none (their role is a template resource or an ARN).

    Raises:
        SandboxError: the SAM translator refuses the template (its message lists why).
    """
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    document = copy.deepcopy(dict(raw_template))
    for resource in (document.get("Resources") or {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function":
            props["CodeUri"] = "s3://sandbox/code.zip"  # what `sam package` leaves; the code is local
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://sandbox/layer.zip"
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region  # the translator reads the region from boto3's default
    try:
        output = transform(document, {}, _NoManagedPolicies())
    except InvalidDocumentException as exc:
        raise SandboxError(f"SAM transform failed: {exc}") from exc
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved
    resources = output.get("Resources") or {}
    roles: dict[str, dict[str, Any]] = {}
    for logical_id, resource in (raw_template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        role = resources.get(f"{logical_id}Role")
        if role is not None and role.get("Type") == "AWS::IAM::Role":
            roles[logical_id] = role
    return roles


def add_sam_role_resources(template: Template, roles: Mapping[str, Mapping[str, Any]]) -> None:
    """Make each SAM-generated role ``<Function>Role`` a resource of ``template`` that its function
    depends on, as in the transformed template: another resource may then need the role without
    the function (``!GetAtt SyncKvsFunctionRole.Arn`` in a nested stack's parameters, an
    ``AWS::IAM::Policy`` attached to it), while the function needs that resource."""
    for function_id, role in roles.items():
        function = template.resources.get(function_id)
        role_id = f"{function_id}Role"
        if function is None or role_id in template.resources:
            continue
        template.resources[role_id] = Resource(
            logical_id=role_id,
            type="AWS::IAM::Role",
            properties=role.get("Properties") or {},
            condition=function.condition,
        )
        template.resources[function_id] = dataclasses.replace(function, depends_on=(*function.depends_on, role_id))


def _policy_json(document: Any) -> str:
    """A policy document as IAM takes it. SAM policy templates omit ``Version``, which IAM accepts
    (default 2008-10-17) and moto refuses; the sandbox adds 2012-10-17 (they differ only in policy
    variables, which no template statement uses)."""
    if isinstance(document, str):
        document = json.loads(document)
    if isinstance(document, Mapping) and "Version" not in document:
        document = {"Version": "2012-10-17", **document}
    return json.dumps(document)


def _check_trust_principals(logical_id: str, document: Any) -> None:
    """IAM refuses a trust policy naming a user or role that does not exist (CreateRole:
    MalformedPolicyDocument "Invalid principal in policy"); moto does not check.

    Raises:
        SandboxError: a ``Principal.AWS`` user or role ARN names nothing.
    """
    from moto.iam.models import iam_backends

    if isinstance(document, str):
        document = json.loads(document)
    for statement in document.get("Statement") or []:
        principal = statement.get("Principal")
        entries = principal.get("AWS", []) if isinstance(principal, Mapping) else []
        for entry in entries if isinstance(entries, list) else [entries]:
            match = re.fullmatch(r"arn:aws[a-z-]*:iam::([0-9]{12}):(user|role)/(?:.*/)?([^/]+)", str(entry))
            if match is None:
                continue
            account, kind, name = match.groups()
            backend = iam_backends[account]["aws"]
            try:
                backend.get_user(name) if kind == "user" else backend.get_role(name)
            except Exception:
                raise SandboxError(f"{logical_id}: Invalid principal in policy: {entry} does not exist") from None


def _create_role(sandbox: StackContext, logical_id: str, props: Mapping[str, Any]) -> Physical:
    """Create a role with its inline and managed policies from resolved properties."""
    _check_trust_principals(logical_id, props["AssumeRolePolicyDocument"])
    iam = sandbox.client("iam")
    name = str(props.get("RoleName") or f"{sandbox.stack_name}-{logical_id}-{random_suffix()}")[:64]
    kwargs: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": _policy_json(props["AssumeRolePolicyDocument"]),
        "Path": str(props.get("Path") or "/"),
    }
    if props.get("Tags"):
        kwargs["Tags"] = [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in props["Tags"]]
    role = iam.create_role(**kwargs)["Role"]
    for policy in props.get("Policies") or []:
        if policy is NO_VALUE or not policy:
            continue
        iam.put_role_policy(
            RoleName=name, PolicyName=str(policy["PolicyName"]), PolicyDocument=_policy_json(policy["PolicyDocument"])
        )
    for arn in props.get("ManagedPolicyArns") or []:
        iam.attach_role_policy(RoleName=name, PolicyArn=str(arn))
    return Physical(ref=name, attrs={"Arn": role["Arn"], "RoleId": role["RoleId"]})


@creates("AWS::IAM::Role")
def _create_template_role(sandbox: StackContext, resource: Resource) -> Physical:
    return _create_role(sandbox, resource.logical_id, sandbox.resolve(resource.properties))


@creates("AWS::IAM::ManagedPolicy")
def _create_managed_policy(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    iam = sandbox.client("iam")
    name = str(props.get("ManagedPolicyName") or f"{sandbox.stack_name}-{resource.logical_id}-{random_suffix()}")[:128]
    kwargs: dict[str, Any] = {"PolicyName": name, "PolicyDocument": _policy_json(props["PolicyDocument"])}
    if props.get("Path"):
        kwargs["Path"] = str(props["Path"])
    if props.get("Description"):
        kwargs["Description"] = str(props["Description"])
    arn = iam.create_policy(**kwargs)["Policy"]["Arn"]
    for role in props.get("Roles") or []:
        iam.attach_role_policy(RoleName=str(role), PolicyArn=arn)
    for user in props.get("Users") or []:
        iam.attach_user_policy(UserName=str(user), PolicyArn=arn)
    return Physical(ref=arn, attrs={"PolicyArn": arn})


@creates("AWS::IAM::Policy")
def _create_policy(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    iam = sandbox.client("iam")
    name, document = str(props["PolicyName"]), _policy_json(props["PolicyDocument"])
    for role in props.get("Roles") or []:
        iam.put_role_policy(RoleName=str(role), PolicyName=name, PolicyDocument=document)
    for user in props.get("Users") or []:
        iam.put_user_policy(UserName=str(user), PolicyName=name, PolicyDocument=document)
    return Physical(ref=f"{sandbox.stack_name}-{resource.logical_id}-{random_suffix()}")


def create_function_role(sandbox: StackContext, logical_id: str, sam_role: Mapping[str, Any] | None) -> str:
    """The execution role ARN of a function: its explicit ``Role``, else the one SAM generates."""
    explicit = sandbox.template.resources[logical_id].properties.get("Role")
    if explicit is not None:
        return str(sandbox.resolve(explicit))
    created = sandbox.physical.get(f"{logical_id}Role")
    if created is not None:  # a resource of its own (add_sam_role_resources)
        return str(created.attrs["Arn"])
    if sam_role is None:
        raise SandboxError(f"{logical_id}: SAM generated no role and the function names none")
    physical = _create_role(sandbox, f"{logical_id}Role", sandbox.resolve(sam_role.get("Properties") or {}))
    sandbox.physical[f"{logical_id}Role"] = physical
    return str(physical.attrs["Arn"])


def lambda_role_session(sandbox: StackContext, role_arn: str, session_name: str) -> dict[str, str]:
    """Temporary credentials of ``role_arn``, assumed as the Lambda service does (not by a caller).

    Returns the ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` variables
    Lambda sets in the execution environment.
    """
    from moto.sts.models import sts_backends

    backend = sts_backends[sandbox.account_id][sandbox.template.partition]
    session = backend.assume_role(
        region_name=sandbox.region,
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy="",
        duration=43200,
        external_id="",
    )
    return {
        "AWS_ACCESS_KEY_ID": session.access_key_id,
        "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
        "AWS_SESSION_TOKEN": session.session_token,
    }


@creates("AWS::Serverless::LayerVersion")
def _create_layer(sandbox: StackContext, resource: Resource) -> Physical:
    """A layer is its local directory (``python/`` inside it when pre-built, as Lambda's /opt/python)."""
    props = sandbox.resolve(resource.properties)
    attrs: dict[str, Any] = {}
    content = props.get("ContentUri")
    if isinstance(content, str):
        layer_dir = (sandbox.template.root / content).resolve()
        python_dir = layer_dir / "python"
        attrs["SandboxPath"] = str(python_dir if python_dir.is_dir() else layer_dir)
    name = str(props.get("LayerName") or f"{sandbox.stack_name}-{resource.logical_id}")
    arn = f"arn:{sandbox.template.partition}:lambda:{sandbox.region}:{sandbox.account_id}:layer:{name}:1"
    return Physical(ref=arn, attrs=attrs)


def _layer_paths(sandbox: StackContext, layers: Any) -> tuple[str, ...]:
    by_arn = {p.ref: str(p.attrs["SandboxPath"]) for p in sandbox.physical.values() if "SandboxPath" in p.attrs}
    return tuple(by_arn[str(arn)] for arn in layers or [] if str(arn) in by_arn)


@creates("AWS::Serverless::Function")
def _create_function(sandbox: StackContext, resource: Resource) -> Physical:
    spec = sandbox.template.function(resource.logical_id, sandbox.physical)
    name = spec.function_name or f"{sandbox.stack_name}-{spec.logical_id}"
    arn = f"arn:{sandbox.template.partition}:lambda:{sandbox.region}:{sandbox.account_id}:function:{name}"
    role_arn = create_function_role(sandbox, spec.logical_id, sandbox.sam_roles.get(spec.logical_id))
    function = LocalFunction(
        spec,
        name=name,
        arn=arn,
        runtime_env=sandbox.runtime_env(),
        role_arn=role_arn,
        layer_paths=_layer_paths(sandbox, sandbox.resolve(resource.properties.get("Layers"))),
    )
    function.credentials = lambda_role_session(sandbox, role_arn, name)
    sandbox.register_function(function)
    return Physical(ref=name, attrs={"Arn": arn})


@dataclass(frozen=True)
class Principal:
    """An IAM user of the sandbox: ``arn``, and the AWS variables of its access key."""

    name: str
    arn: str
    access_key_id: str
    secret_access_key: str

    @property
    def credentials(self) -> dict[str, str]:
        """``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


def create_root_principal(account_id: str, name: str) -> Principal:
    """The sandbox administrator: a user allowed everything, created in moto's IAM directly.

    It stands for the account's administrator and for CloudFormation's service role; creating it
    through the backend (not an API call) works whatever the IAM enforcement state.
    """
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["aws"]
    user = backend.create_user(region_name="us-east-1", user_name=name)
    backend.put_user_policy(name, f"{name}-policy", json.dumps(ADMIN_POLICY))
    key = backend.create_access_key(name)
    return Principal(name, user.arn, key.access_key_id, key.secret_access_key)


def create_principal(
    iam: Any, name: str, *, inline_policy: Mapping[str, Any] | None = None, managed_policy_arns: tuple[str, ...] = ()
) -> Principal:
    """Create an IAM user with an access key; attach an inline policy and managed policies."""
    user = iam.create_user(UserName=name)["User"]
    if inline_policy is not None:
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(inline_policy))
    for arn in managed_policy_arns:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Principal(name, user["Arn"], key["AccessKeyId"], key["SecretAccessKey"])
