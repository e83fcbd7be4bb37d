"""The local sandbox: moto in server mode plus the template's functions, as strict as AWS.

One HTTP endpoint on 127.0.0.1 answers every AWS API a client or a function uses (see
:mod:`utils.sandbox.front` for what the sandbox serves itself and what goes to moto).

:meth:`Sandbox.start`:

1. parses the template (:mod:`.template`) and runs the SAM transform for the function roles
   (:mod:`.identities`);
2. patches moto where AWS is stricter (KMS signing, ACM import rules and re-import, DynamoDB
   atomic writes and index lag, S3's 403 for a missing key, IAM evaluation);
3. creates an administrator user (CloudFormation's stand-in) in the CA account and in each
   workload account (:mod:`.accounts`) and switches IAM enforcement on: from then on every
   request is authorised against the caller's policies (:mod:`.iam_patch`), including the
   sandbox's own provisioning, which acts as the admin;
4. creates the template's resources in dependency order (:mod:`.resources`,
   :mod:`.identities`, nested stacks: :mod:`.stacks`): each function gets the role SAM
   generates and runs in worker processes of its own with that role's session credentials
   (:mod:`.runtime`);
5. runs each custom resource's ``Create`` through its function (:mod:`.custom_resources`);
   functions are looked up, invoked and fed by their event sources in :mod:`.invocations`;
6. creates the operator user, whose only permissions are the template's managed policies:
   :meth:`env` gives its credentials to the operator tools;
7. starts the event sources: DynamoDB stream pollers, schedules (:mod:`.events`).

Use from tests::

    with Sandbox(repo_root) as sandbox:
        result = sandbox.invoke("IssueFunction", {"csr": pem})   # as the administrator
        sandbox.client("dynamodb")                                 # administrator's client
        subprocess.run([...], env={**os.environ, **sandbox.env()}) # the operator's tools
        sandbox.trigger_schedule("SyncKvsFunction").raise_for_error()

    with Sandbox(repo_root, workload_accounts=("222222222222",)) as sandbox:
        edge = sandbox.deploy_edge_stack("222222222222")         # edge/template.yaml there
        sandbox.admin_client("acm", "222222222222", "us-east-1")  # that account's administrator

Limits: one active Sandbox per process is the normal case (moto's state is process-global
and is reset when the first sandbox starts and the last one stops). No ``LogType=Tail``,
no versions/aliases, no asynchronous retries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from botocore.config import Config
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from .accounts import AccountsMixin, check_workload_accounts, session
from .acm_patch import patch_moto_acm
from .context import SandboxError
from .custom_resources import PendingResponse, create_custom_resource, send_custom_resource_request
from .distribution import Distribution
from .dynamodb_patch import patch_moto_dynamodb, set_gsi_lag
from .events import ScheduleSource
from .front import Front, QuietRequestHandler
from .iam_patch import IamEnforcer, patch_moto_iam
from .identities import Principal, add_sam_role_resources, create_principal, create_root_principal, sam_roles
from .invocations import EVENT_SOURCES, EventSource, FunctionsMixin
from .kms_patch import patch_moto_kms
from .kvs import KvsEmulator, install_kvs_emulator, installed_kvs_emulator, uninstall_kvs_emulator
from .resources import IGNORED_TYPES, RESOURCE_CREATORS, ConnectionFunction
from .runtime import FunctionError, InvocationResult, LocalFunction
from .s3_patch import S3RequestInfo, patch_moto_s3
from .stacks import ChildStack, describe_stacks_xml
from .template import Output, Physical, Template, TemplateError

__all__ = [
    "EVENT_SOURCES",
    "ChildStack",
    "ConnectionFunction",
    "EventSource",
    "FunctionError",
    "InvocationResult",
    "LocalFunction",
    "Sandbox",
    "SandboxError",
]

logger = logging.getLogger(__name__)


#: The process-wide IAM enforcer moto is patched with (one moto per process).
ENFORCER = IamEnforcer()


def _stack_name_from_samconfig(repo_root: Path) -> str:
    """``[default.global.parameters] stack_name`` of samconfig.toml, else "sandbox"."""
    try:
        config = tomllib.loads((repo_root / "samconfig.toml").read_text(encoding="utf-8"))
        return str(config["default"]["global"]["parameters"]["stack_name"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "sandbox"


class Sandbox(FunctionsMixin, AccountsMixin):
    """AWS emulation for one template on ``http://host:port`` (context manager).

    ``repo_root``: directory with ``template.yaml`` (and samconfig.toml); ``port``: 0 picks a
    free port; ``parameter_overrides``: template parameters, e.g. {"IssuingCaKeySpec": "RSA_2048"};
    ``enforce_iam``: authorise every request against the caller's IAM policies (default True:
    AWS does); ``gsi_lag_seconds``: how long a global secondary index lags its table (default 0;
    DynamoDB's indexes are eventually consistent, so tests of index readers set it).
    After :meth:`start`: ``endpoint_url``, ``physical`` (logical id -> Physical),
    ``functions`` (logical id -> LocalFunction), ``outputs`` (key -> value), ``kvs`` (the
    KeyValueStore emulator), ``connection_functions``, ``schedules`` ((function, event) ->
    ScheduleSource; run one with :meth:`trigger_schedule`), ``admin`` and ``operator``
    (:class:`~utils.sandbox.identities.Principal`). ``run_schedules``: fire ``rate()``
    schedules on a timer too (default: only on demand). ``workload_accounts``: ids of further
    accounts, each with an administrator of its own (:mod:`.accounts`: ``deploy_stack``,
    ``admin_client``, ``create_caller``; ``stacks`` holds nested and deployed stacks).
    """

    _active = 0
    _active_lock = threading.Lock()
    #: Whether a sandbox installed the KVS emulator (then the last one to stop uninstalls it).
    _kvs_installed_by_sandbox = False

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
        enforce_iam: bool = True,
        gsi_lag_seconds: float = 0.0,
        workload_accounts: Sequence[str] = (),
    ) -> None:
        self.repo_root = Path(repo_root).resolve()
        self.template_path = self.repo_root / template
        self.host = host
        self.port = port
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self.workload_accounts = check_workload_accounts(workload_accounts, self.account_id)
        self.admins: dict[str, Principal] = {}
        self.stacks: dict[str, ChildStack] = {}
        self.stack_name = stack_name or _stack_name_from_samconfig(self.repo_root)
        self.stack_id = f"arn:aws:cloudformation:{region}:{self.account_id}:stack/{self.stack_name}/{uuid.uuid4()}"
        self.parameter_overrides = dict(parameter_overrides or {})
        self.enforce_iam = enforce_iam
        self.gsi_lag_seconds = gsi_lag_seconds
        self.template: Template
        self.physical: dict[str, Physical] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.outputs: dict[str, str] = {}
        self.sam_roles: dict[str, dict[str, Any]] = {}
        self.admin: Principal | None = None
        self.operator: Principal | None = None
        self.pending_responses: dict[str, PendingResponse] = {}
        self._output_specs: dict[str, Output] = {}
        self._names: dict[str, LocalFunction] = {}
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._async_threads: list[threading.Thread] = []
        self._event_sources: dict[str, EventSource] = {}
        #: (function logical id, event name) -> schedule; see :meth:`trigger_schedule`.
        self.schedules: dict[tuple[str, str], ScheduleSource] = {}
        self.run_schedules = run_schedules
        #: Logical id -> the template's CloudFront connection functions (recorded, not executed).
        self.connection_functions: dict[str, ConnectionFunction] = {}
        #: Distribution id -> the template's CloudFront distributions, served under /__cloudfront__/<id>.
        self.distributions: dict[str, Distribution] = {}
        #: Function URL host -> function logical id (reachable only as a distribution's origin).
        self.function_urls: dict[str, str] = {}
        #: The KeyValueStore data-plane emulator (installed in this process while running).
        self.kvs: KvsEmulator = installed_kvs_emulator() or KvsEmulator()
        self._clients: dict[tuple[str, ...], Any] = {}
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
        self.connection_functions, self.schedules, self.stacks = {}, {}, {}
        self.distributions, self.function_urls = {}, {}
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
        self.sam_roles = sam_roles(self.template.raw, self.region)
        add_sam_role_resources(self.template, self.sam_roles)
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # AWS managed policies SAM attaches
        patch_moto_kms()
        patch_moto_acm()
        patch_moto_dynamodb()
        set_gsi_lag(self.gsi_lag_seconds)
        patch_moto_s3(self._may_list_bucket)
        patch_moto_iam(ENFORCER)
        server = self._serve()
        with Sandbox._active_lock:
            if Sandbox._active == 0:
                _reset_moto()
                ENFORCER.enabled = False
            if installed_kvs_emulator() is None:
                Sandbox._kvs_installed_by_sandbox = True
            self.kvs = install_kvs_emulator(self.kvs)
            self.kvs.authorizer = lambda action, arn, headers: self.authorize(dict(headers), action, arn)
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
            self.admin = create_root_principal(
                self.account_id, f"{self.stack_name}-sandbox-admin-{uuid.uuid4().hex[:8]}"
            )
            self._create_account_admins()
            ENFORCER.enabled = self.enforce_iam
            self._create_resources()
            self._output_specs = self.template.outputs(self.physical)
            self.outputs = {key: output.value for key, output in self._output_specs.items()}
            policies = tuple(
                str(self.physical[r.logical_id].ref) for r in self.template.of_type("AWS::IAM::ManagedPolicy")
            )
            self.operator = create_principal(
                self.client("iam"), f"{self.stack_name}-operator-{uuid.uuid4().hex[:8]}", managed_policy_arns=policies
            )
            self._start_event_sources()
        except BaseException:
            self.stop()
            raise
        logger.info("sandbox for stack %s listening on %s", self.stack_name, self.endpoint_url)
        return self

    def _serve(self) -> BaseWSGIServer:
        app = Front(self, DomainDispatcherApplication(create_backend_app))
        # Bind ourselves: werkzeug prints and calls sys.exit(1) when the port is taken.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(128)
            return make_server(
                self.host,
                listener.getsockname()[1],
                app,
                threaded=True,
                request_handler=QuietRequestHandler,
                fd=listener.fileno(),
            )
        except OSError as exc:
            raise SandboxError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        finally:
            listener.close()  # the server keeps its own duplicate of the socket

    def stop(self) -> None:
        """Stop pollers, workers and the server, release the port. Idempotent."""
        for source in reversed(list(self._event_sources.values())):
            with contextlib.suppress(Exception):
                source.stop()
        self._event_sources.clear()
        for thread in self._async_threads:
            thread.join(timeout=max((f.spec.timeout for f in self.functions.values()), default=3))
        self._async_threads.clear()
        for function in self.functions.values():
            function.close()
        if self._server is not None:
            self._server.shutdown()
            if self._thread is not None:
                self._thread.join()
            self._server.server_close()
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
                    ENFORCER.enabled = False
                    self.kvs.authorizer = None
                    set_gsi_lag(0)
                    _reset_moto()
                    self.kvs.reset()
                    if Sandbox._kvs_installed_by_sandbox:
                        uninstall_kvs_emulator()
                        Sandbox._kvs_installed_by_sandbox = False
            self._counted = False

    # -- clients, credentials and environment -------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment of an operator's process: AWS_ENDPOINT_URL, region, the operator's credentials."""
        if self.operator is None:
            raise SandboxError("the sandbox is not running (no operator yet)")
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **self.operator.credentials,
        }

    def runtime_env(self) -> dict[str, str]:
        """Variables every function gets besides its own: endpoint and region (Lambda sets both)."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client of the sandbox administrator (CA account; cached; no retries, long read timeout)."""
        if self.admin is None:
            raise SandboxError("the sandbox is not running (no administrator yet)")
        return self.admin_client(service, self.account_id, region)

    def function_client(self, logical_id: str, service: str) -> Any:
        """A boto3 client with a function's role credentials: what Lambda's event source mapping
        uses to read a stream for the function (the execution role needs the stream's permissions)."""
        key = (f"function:{logical_id}", service)
        if key not in self._clients:
            session_ = session(self.functions[logical_id].credentials, self.region)
            self._clients[key] = session_.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                config=Config(read_timeout=900, retries={"total_max_attempts": 1}),
            )
        return self._clients[key]

    def authorize(self, headers: dict[str, str], action: str, resource: str) -> tuple[str, str] | None:
        """None when the request's credentials may do ``action`` on ``resource``; else AWS's
        (error code, message) (:meth:`~utils.sandbox.iam_patch.IamEnforcer.authorize_headers`)."""
        return ENFORCER.authorize_headers(headers, action, resource)

    def _may_list_bucket(self, request: S3RequestInfo) -> bool:
        """Whether the caller may s3:ListBucket on the bucket (decides 403 or 404 for a missing key)."""
        token = request.headers.get("X-Amz-Security-Token") or request.headers.get("x-amz-security-token")
        return ENFORCER.allows(request.access_key_id or "", token, "s3:ListBucket", f"arn:aws:s3:::{request.bucket}")

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions in ``value`` against what the sandbox has created so far."""
        try:
            return self.template.resolve(value, self.physical)
        except TemplateError as exc:
            raise SandboxError(str(exc)) from exc

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
                    physical = create_custom_resource(self, self.pending_responses, resource)
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

    def custom_resource_request(
        self,
        logical_id: str,
        request_type: str,
        *,
        properties: Mapping[str, Any] | None = None,
        old_properties: Mapping[str, Any] | None = None,
    ) -> Physical:
        """Send an ``Update`` or ``Delete`` (or another ``Create``) of a custom resource, as a stack
        update or deletion would; returns what the function answered (PhysicalResourceId, Data).

        Raises:
            SandboxError: the function failed or answered FAILED (the message has its Reason).
        """
        resource = self.template.resources[logical_id]
        if not resource.is_custom_resource:
            raise SandboxError(f"{logical_id} is a {resource.type}, not a custom resource")
        return send_custom_resource_request(
            self,
            self.pending_responses,
            resource,
            request_type,
            properties=properties,
            old_properties=old_properties,
        )

    # -- CloudFormation view ----------------------------------------------------------------------

    def describe_stacks_xml(self) -> bytes:
        """CloudFormation DescribeStacks response (query protocol XML) for this stack."""
        return describe_stacks_xml(
            stack_id=self.stack_id,
            stack_name=self.stack_name,
            template=self.template,
            outputs=self._output_specs,
            created=self._created_at,
        )

    def state(self) -> dict[str, Any]:
        """JSON-ready summary: endpoint_url, region, stack_name, functions (logical id -> name),
        outputs, key_value_stores (logical id -> ARN), connection_functions (logical id ->
        {name, arn, id, runtime, stage, key_value_store_arns, code}), schedules (function logical
        id -> event names), operator (the operator's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY),
        admin (the same for the sandbox administrator, for inspection), stacks (stacks deployed into
        workload accounts: name -> {account_id, parameters, outputs, connection_functions}), admins (account id
        -> its administrator's credentials)."""
        schedules: dict[str, list[str]] = {}
        for logical_id, event_name in self.schedules:
            schedules.setdefault(logical_id, []).append(event_name)
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "stack_name": self.stack_name,
            "functions": self.function_names,
            "outputs": dict(self.outputs),
            "key_value_stores": _key_value_stores(self.template, self.physical, self.stacks, self.account_id),
            "connection_functions": {lid: f.summary() for lid, f in self.connection_functions.items()},
            "schedules": schedules,
            "operator": self.operator.credentials if self.operator else {},
            "admin": self.admin.credentials if self.admin else {},
            "stacks": {
                name: {
                    "account_id": stack.account_id,
                    "parameters": dict(stack.parameters),
                    "outputs": dict(stack.outputs),
                    "connection_functions": {lid: f.summary() for lid, f in stack.connection_functions.items()},
                }
                for name, stack in self.stacks.items()
                if stack.account_id != self.account_id
            },
            "admins": {account: admin.credentials for account, admin in self.admins.items()},
        }


def _key_value_stores(
    template: Template, physical: Mapping[str, Physical], stacks: Mapping[str, ChildStack], account_id: str
) -> dict[str, str]:
    """Logical id -> ARN of the KeyValueStores of the stack and of its nested stacks (same account)."""
    found = {}
    for stack_template, created in [(template, physical)] + [
        (s.template, s.physical) for s in stacks.values() if s.account_id == account_id
    ]:
        for resource in stack_template.of_type("AWS::CloudFront::KeyValueStore"):
            if resource.logical_id in created:
                found[resource.logical_id] = str(created[resource.logical_id].attrs["Arn"])
    return found


def _reset_moto() -> None:
    """Forget every moto resource in this process (as mock_aws does on entry/exit)."""
    from moto.moto_api import _internal

    _internal.moto_api_backend.reset()
