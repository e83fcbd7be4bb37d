"""Several AWS accounts in one sandbox: the CA account and workload accounts.

moto keeps accounts apart by the caller's credentials: an access key belongs to the account
whose IAM created it, and every request is served from that account's backends. So each
account gets its own administrator (CloudFormation's stand-in there), and whatever that
administrator creates (KeyValueStores, ACM certificates, roles) lives in that account only.
Across accounts the IAM enforcer (:mod:`.iam_patch`) refuses resource ARNs of another account
and evaluates role trust policies for ``sts:AssumeRole``, the one way across.

:class:`AccountsMixin` gives :class:`~utils.sandbox.server.Sandbox`:

- ``ca_account_id`` (the sandbox's own stack), ``workload_accounts`` (ids given at construction);
- :meth:`~AccountsMixin.admin_client` (service, account, region);
- :meth:`~AccountsMixin.create_caller` (an IAM user with an inline policy in an account);
- :meth:`~AccountsMixin.deploy_stack` (a template, e.g. ``edge/template.yaml``, into an account),
  :meth:`~AccountsMixin.deploy_edge_stack` (the edge stack with the CA stack's values);
- ``stacks``: stack name -> :class:`~utils.sandbox.stacks.ChildStack` (nested and deployed ones).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from .context import SandboxError
from .identities import Principal, create_principal, create_root_principal
from .stacks import ChildStack, describe_stacks_xml
from .template import Template

__all__ = ["AccountsMixin", "check_workload_accounts", "session"]


def session(credentials: Mapping[str, str], region: str) -> boto3.session.Session:
    """A boto3 session with these credentials, whatever AWS_PROFILE or config files the host has."""
    # the host's AWS_PROFILE is not the sandbox's: this session reads no profile variable
    core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    return boto3.session.Session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
        region_name=region,
        botocore_session=core,
    )


def _account_of_key(access_key_id: str) -> str:
    """The account of an access key in moto's IAM (moto's default account when unknown)."""
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key_id)


def check_workload_accounts(accounts: Sequence[str], ca_account_id: str) -> tuple[str, ...]:
    """The workload account ids, checked: 12 digits, distinct, not the CA account.

    Raises:
        SandboxError: an id is malformed, repeated or the CA account's.
    """
    found: list[str] = []
    for account in accounts:
        if not re.fullmatch(r"[0-9]{12}", str(account)):
            raise SandboxError(f"workload account {account!r} is not a 12-digit account id")
        if account == ca_account_id or account in found:
            raise SandboxError(f"workload account {account} is the CA account or given twice")
        found.append(str(account))
    return tuple(found)


class AccountsMixin:
    """Accounts and extra stacks of a sandbox (mixed into :class:`~utils.sandbox.server.Sandbox`)."""

    account_id: str
    region: str
    repo_root: Path
    template: Template
    outputs: dict[str, str]
    stack_name: str
    workload_accounts: tuple[str, ...]
    admin: Principal | None
    #: Account id -> its administrator (the CA account's is ``admin``).
    admins: dict[str, Principal]
    #: Stack name -> nested stacks and stacks deployed with :meth:`deploy_stack`.
    stacks: dict[str, ChildStack]
    _clients: dict[tuple[str, ...], Any]

    @property
    def endpoint_url(self) -> str:  # provided by the Sandbox
        raise NotImplementedError

    @property
    def ca_account_id(self) -> str:
        """The account of the sandbox's own stack (template.yaml: the CA)."""
        return self.account_id

    def _create_account_admins(self) -> None:
        """One administrator per workload account (the CA account's is created by ``start``)."""
        if self.admin is None:
            raise SandboxError("the sandbox is not running (no administrator yet)")
        self.admins = {self.account_id: self.admin}
        for account in self.workload_accounts:
            self.admins[account] = create_root_principal(account, f"{self.stack_name}-admin-{uuid.uuid4().hex[:8]}")

    def admin_client(self, service: str, account_id: str | None = None, region: str | None = None) -> Any:
        """A boto3 client of ``account_id``'s administrator (default: the CA account), cached.

        Raises:
            SandboxError: the sandbox is not running or the account is not one of its accounts.
        """
        account = account_id or self.account_id
        admin = self.admins.get(account)
        if admin is None:
            raise SandboxError(f"account {account} is not an account of the sandbox (has {sorted(self.admins)})")
        key = (account, service, region or self.region)
        if key not in self._clients:
            self._clients[key] = session(admin.credentials, key[2]).client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                config=Config(read_timeout=900, retries={"total_max_attempts": 1}),
            )
        return self._clients[key]

    def create_caller(self, account_id: str, name: str, policy_document: Mapping[str, Any]) -> Principal:
        """An IAM user ``name`` in ``account_id`` with ``policy_document`` as its inline policy and an
        access key (``Principal.credentials``). Created by that account's administrator.

        Raises:
            SandboxError: unknown account; botocore's ClientError if IAM refuses (e.g. name taken).
        """
        return create_principal(
            self.admin_client("iam", account_id), name, inline_policy=json.loads(json.dumps(policy_document))
        )

    def child_stack_xml(self, name_or_id: str, headers: Mapping[str, str]) -> tuple[str, bytes] | None:
        """(stack id, DescribeStacks response) of the nested or deployed stack named ``name_or_id``
        (name or id) in the account of the request's credentials; None when it has none."""
        authorization = headers.get("Authorization", "")
        key = authorization.split("Credential=", 1)[-1].split("/", 1)[0] if "Credential=" in authorization else ""
        account = _account_of_key(key)
        for stack in self.stacks.values():
            if stack.account_id == account and name_or_id in (stack.stack_name, stack.stack_id):
                return stack.stack_id, describe_stacks_xml(
                    stack_id=stack.stack_id,
                    stack_name=stack.stack_name,
                    template=stack.template,
                    outputs=stack.output_specs,
                    created=stack.created_at,
                )
        return None

    def deploy_edge_stack(self, account_id: str, external_id: str | None = None) -> dict[str, str]:
        """Deploy ``edge/template.yaml`` into ``account_id`` as README's workload-account steps do:
        ``CaAccountId`` this sandbox's, ``CaRoleArns`` its output ``EdgeCallerRoleArns``, the same
        project and environment, ``ExternalId`` given or random. Returns the outputs.

        Raises:
            SandboxError: no ``EdgeCallerRoleArns`` output (``EnableViewerMtls=false``), or what
                :meth:`deploy_stack` raises.
        """
        outputs, parameters = self.outputs, self.template.parameters
        if "EdgeCallerRoleArns" not in outputs:
            raise SandboxError("the CA stack has no EdgeCallerRoleArns output (EnableViewerMtls=false?)")
        return self.deploy_stack(
            self.repo_root / "edge" / "template.yaml",
            account_id,
            {
                "CaProjectName": parameters.get("ProjectName", "kmsca"),
                "CaEnvironmentName": parameters.get("EnvironmentName", "dev"),
                "CaAccountId": self.account_id,
                "CaRoleArns": outputs["EdgeCallerRoleArns"],
                "ExternalId": external_id or str(uuid.uuid4()),
            },
        )

    def deploy_stack(
        self,
        template_path: str | Path,
        account_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        stack_name: str | None = None,
    ) -> dict[str, str]:
        """Deploy ``template_path`` into ``account_id`` as its administrator (``sam deploy`` there);
        return its outputs. The stack is kept in ``stacks`` (default name: the template's folder
        and the account, e.g. ``edge-222222222222``). Its connection functions are in
        ``stacks[name].connection_functions``.

        A failed deploy is not rolled back: resources created before the failure stay.

        Raises:
            SandboxError: unknown account, bad parameters (checked as CloudFormation does), a
                resource that cannot be created (e.g. a trust policy naming a principal that does
                not exist), or a stack of that name exists already.
        """
        if account_id not in self.admins:
            raise SandboxError(f"account {account_id} is not an account of the sandbox (has {sorted(self.admins)})")
        path = Path(template_path).resolve()
        name = stack_name or f"{path.parent.name}-{account_id}"
        if name in self.stacks:
            raise SandboxError(f"stack {name} exists already")
        child = ChildStack(self, path, account_id=account_id, stack_name=name, parameters=parameters)  # type: ignore[arg-type]
        self.stacks[name] = child
        try:
            return child.deploy()
        except BaseException:
            del self.stacks[name]
            raise
