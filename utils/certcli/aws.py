"""Finding and calling the CA functions: boto3 clients, the AWS options every CLI shares,
samconfig.toml defaults, stack outputs, and the Lambda invoke with its error handling.

Everything goes through boto3 with the standard configuration chain (``--profile``,
``--region``, ``AWS_*`` environment variables, ``AWS_ENDPOINT_URL`` for the local sandbox), so
the same command works against a real deployment and against the sandbox.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CliError, Refused
from .function_url import call_function_url, is_function_url

try:  # Python 3.11+; older Pythons use the small reader below (the CLIs run on 3.9+)
    import tomllib as _toml  # novermin
except ModuleNotFoundError:  # pragma: no cover - exercised on 3.9/3.10 and by the tests directly
    _toml = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

#: Environment variables read as defaults (command-line options win).
ENV_STACK_NAME = "KMSCA_STACK_NAME"
ENV_FUNCTION_NAME = "KMSCA_FUNCTION_NAME"
#: Environment variable naming the revoke function (``revoke-cert.py``; command-line options win).
ENV_REVOKE_FUNCTION_NAME = "KMSCA_REVOKE_FUNCTION_NAME"

#: Stack outputs the tools read (template.yaml ``Outputs``).
OUTPUT_FUNCTION_NAME = "IssueFunctionName"
#: The function URLs (AWS_IAM) the tools call when the stack has them (issue 10); preferred over the names.
OUTPUT_FUNCTION_URL = "IssueFunctionUrl"
OUTPUT_REVOKE_FUNCTION_URL = "RevokeFunctionUrl"
OUTPUT_CA_BUNDLE_URI = "CaBundleS3Uri"
OUTPUT_REVOKE_FUNCTION_NAME = "RevokeFunctionName"
OUTPUT_ROTATE_FUNCTION_NAME = "RotateAcmFunctionName"

#: Default seconds to wait for the issue function's answer (its own timeout is 30 s).
DEFAULT_TIMEOUT_SECONDS = 90


class AwsClients:
    """Lazily created boto3 clients of one session; tests pass ready-made (stubbed) clients.

    The session follows the standard configuration chain, including ``AWS_ENDPOINT_URL`` for
    the local sandbox.
    """

    def __init__(
        self,
        *,
        profile: str | None = None,
        region: str | None = None,
        fallback_region: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        lambda_client: LambdaClient | None = None,
        cloudformation_client: CloudFormationClient | None = None,
        s3_client: S3Client | None = None,
    ) -> None:
        self._profile, self._region, self._fallback_region, self._timeout = (
            profile,
            region,
            fallback_region,
            timeout,
        )
        self._clients: dict[str, Any] = {
            "lambda": lambda_client,
            "cloudformation": cloudformation_client,
            "s3": s3_client,
        }
        self._session: Any = None

    def _client(self, service: str) -> Any:
        if self._clients.get(service) is None:
            import boto3
            from botocore.config import Config

            if self._session is None:
                self._session = boto3.Session(profile_name=self._profile, region_name=self._region)
            region = self._session.region_name or self._fallback_region
            if not region:
                raise Refused(
                    "InvalidArgument",
                    "no AWS region: pass --region or set AWS_REGION (or region in samconfig.toml)",
                )
            # Retries follow the standard AWS configuration (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE); they
            # are safe because every issue request carries an idempotency key and revocation is
            # idempotent.
            config = Config(read_timeout=self._timeout)
            self._clients[service] = self._session.client(service, region_name=region, config=config)
        return self._clients[service]

    @property
    def lambda_(self) -> LambdaClient:
        """Lambda client (Invoke)."""
        return self._client("lambda")

    @property
    def sts(self) -> Any:
        """STS client (GetCallerIdentity: the default ``requested_by`` label)."""
        return self._client("sts")

    @property
    def cloudformation(self) -> CloudFormationClient:
        """CloudFormation client (DescribeStacks)."""
        return self._client("cloudformation")

    @property
    def s3(self) -> S3Client:
        """S3 client (GetObject of the CA bundle)."""
        return self._client("s3")


def add_aws_arguments(
    parser: argparse.ArgumentParser, *, what: str, output: str, env_var: str, stack_help: str | None = None
) -> argparse._ArgumentGroup:
    """Add the options every CLI shares to find and call a CA function: ``--profile``,
    ``--region``, ``--stack-name``, ``--function-name``, ``--config-env``, ``--samconfig``,
    ``--timeout``.

    Args:
        what: the function's role ("issue function"), for the help text.
        output: the stack output naming the function.
        env_var: the environment variable naming the function.
        stack_help: help of ``--stack-name`` before its default.

    Returns:
        The "AWS" argument group, for options of one tool only.
    """
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--profile", help="AWS named profile (default: the standard credential chain)")
    aws.add_argument("--region", help="AWS region (default: AWS_REGION / profile, else samconfig.toml deploy region)")
    aws.add_argument(
        "--stack-name",
        help=f"{stack_help or f'stack whose {output} output names the function'} (default: {ENV_STACK_NAME}, "
        "else samconfig.toml stack_name)",
    )
    aws.add_argument(
        "--function-name",
        help=f"{what} name or ARN (direct Invoke: administrators), or its function URL (https://...: SigV4, "
        f"what other accounts use); overrides the stack outputs {output.replace('Name', 'Url')} and {output} "
        f"(default: {env_var})",
    )
    aws.add_argument(
        "--config-env",
        default="default",
        help="samconfig.toml environment to read defaults from (default 'default')",
    )
    aws.add_argument(
        "--samconfig",
        type=Path,
        metavar="FILE",
        help="samconfig.toml to read (default ./samconfig.toml, else the project's)",
    )
    aws.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"how long to wait for the {what} (default {DEFAULT_TIMEOUT_SECONDS})",
    )
    return aws


def function_and_stack(
    args: argparse.Namespace, environ: Mapping[str, str], env_var: str
) -> tuple[str | None, str | None]:
    """``(function_name, stack_name)`` from the options, else the environment, else samconfig.toml.

    The stack name comes from samconfig.toml only when neither a function nor a stack was given.

    Raises:
        Refused: ``--timeout`` not positive, or an unreadable ``--samconfig``.
    """
    if args.timeout <= 0:
        raise Refused("InvalidArgument", "--timeout must be positive")
    function_name = args.function_name or environ.get(env_var) or None
    stack_name = args.stack_name or environ.get(ENV_STACK_NAME) or None
    if not stack_name and not function_name:
        stack_name = default_stack_name(args.samconfig, args.config_env)
    return function_name, stack_name


def clients_for(args: argparse.Namespace) -> AwsClients:
    """boto3 clients for the parsed AWS options (region falls back to samconfig.toml's)."""
    fallback_region = None if args.region else samconfig_region(args.samconfig, args.config_env)
    return AwsClients(profile=args.profile, region=args.region, fallback_region=fallback_region, timeout=args.timeout)


def default_stack_name(samconfig: Path | None, config_env: str) -> str | None:
    """``stack_name`` of ``[<config_env>.global.parameters]`` (or ``.deploy.``) in samconfig.toml.

    Looks at ``samconfig`` when given, else ``./samconfig.toml``, else the one next to this
    tool's directory (the project root). Returns None when none is found.

    Raises:
        Refused: code ``InvalidArgument`` when the file exists but is not valid TOML, or has no
            ``config_env`` environment.
    """
    config = _read_samconfig(samconfig)
    environments = sorted(k for k, v in config.items() if isinstance(v, dict))
    if environments and config_env not in environments:
        found = ", ".join(environments)
        raise Refused(
            "InvalidArgument",
            f"samconfig.toml has no [{config_env}.*] section (environments: {found}): pass --config-env, "
            f"--stack-name or --function-name",
        )
    env = config.get(config_env, {})
    for command in ("global", "deploy"):
        name = env.get(command, {}).get("parameters", {}).get("stack_name")
        if isinstance(name, str) and name:
            return name
    return None


def samconfig_region(samconfig: Path | None, config_env: str) -> str | None:
    """``region`` of ``[<config_env>.deploy.parameters]`` (or ``.global.``) in samconfig.toml, or None."""
    env = _read_samconfig(samconfig).get(config_env, {})
    for command in ("deploy", "global"):
        region = env.get(command, {}).get("parameters", {}).get("region")
        if isinstance(region, str) and region:
            return region
    return None


def _read_samconfig(samconfig: Path | None) -> dict[str, Any]:
    # The fallback is the project root's (a checkout or an editable install: this file is utils/certcli/aws.py).
    candidates = (
        [samconfig] if samconfig else [Path("samconfig.toml"), Path(__file__).resolve().parents[2] / "samconfig.toml"]
    )
    for path in candidates:
        if path.is_file():
            try:
                return load_toml(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:  # tomllib.TOMLDecodeError is a ValueError
                raise Refused("InvalidArgument", f"{path} is not valid TOML: {exc}") from None
    if samconfig:
        raise Refused("InvalidArgument", f"{samconfig} does not exist")
    return {}


def load_toml(text: str) -> dict[str, Any]:
    """Parse samconfig.toml: with ``tomllib`` on Python 3.11+, else with :func:`read_simple_toml`.

    Raises:
        ValueError: the text is not valid TOML (``tomllib.TOMLDecodeError`` is a ValueError).
    """
    if _toml is not None:
        return _toml.loads(text)
    return read_simple_toml(text)


_TABLE = re.compile(r"^\[\s*([A-Za-z0-9_.-]+)\s*\]$")
_KEY_VALUE = re.compile(r"^([A-Za-z0-9_-]+)\s*=\s*(.+)$")


def read_simple_toml(text: str) -> dict[str, Any]:
    """The subset of TOML that samconfig.toml uses: ``[a.b.c]`` tables of ``key = value`` lines.

    Strings (``"..."`` with JSON-compatible escapes, ``'...'`` literal) become ``str``; other
    values (booleans, numbers) are kept as their text, since the CLIs read only the string keys
    ``stack_name`` and ``region``. For Pythons without ``tomllib`` (before 3.11).

    Raises:
        ValueError: a line that is neither a table header, a ``key = value``, a comment nor blank.
    """
    root: dict[str, Any] = {}
    table = root
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if header := _TABLE.match(line):
            table = root
            for part in header.group(1).split("."):
                table = table.setdefault(part, {})
            continue
        pair = _KEY_VALUE.match(line)
        if not pair:
            raise ValueError(f"line {number}: not a table header or key = value: {line[:60]!r}")
        table[pair.group(1)] = _simple_value(pair.group(2).strip(), number)
    return root


def _simple_value(value: str, number: int) -> Any:
    if value.startswith('"'):
        end = value.rfind('"')
        if end == 0:
            raise ValueError(f"line {number}: unterminated string")
        return json.loads(value[: end + 1])
    if value.startswith("'"):
        end = value.find("'", 1)
        if end < 0:
            raise ValueError(f"line {number}: unterminated string")
        return value[1:end]
    return value.split("#", 1)[0].strip()


def stack_outputs(cloudformation: CloudFormationClient, stack_name: str) -> dict[str, str]:
    """Outputs of ``stack_name`` as ``{OutputKey: OutputValue}`` (CloudFormation ``DescribeStacks``).

    Raises:
        CliError: code ``StackNotFound`` naming the region and how to choose another.
        botocore.exceptions.ClientError: the stack is not readable.
    """
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if "does not exist" not in message:
            raise
        region = cloudformation.meta.region_name
        raise CliError(
            "StackNotFound",
            f"stack {stack_name!r} does not exist in {region}: pass --region (or set AWS_REGION, or region in "
            f"samconfig.toml), or --stack-name / {ENV_STACK_NAME} for another stack",
        ) from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", []) if "OutputKey" in o}


def find_function(
    cloudformation: Callable[[], CloudFormationClient],
    *,
    function_name: str | None,
    stack_name: str | None,
    output: str,
    what: str,
    env_var: str,
    url_output: str | None = None,
) -> tuple[str, dict[str, str]]:
    """Decide which function to call: ``function_name``, else the stack's ``url_output`` (its
    function URL, called with SigV4), else its ``output`` (its name, direct Invoke).

    The stack is read (``DescribeStacks``) only when ``stack_name`` is given.

    Args:
        output: the stack output naming the function (``IssueFunctionName``, ``RevokeFunctionName``).
        url_output: the stack output with its function URL (``IssueFunctionUrl``), if it has one.
        what: the function's role, for messages.
        env_var: the environment variable that names the function, for messages.

    Returns:
        ``(function name or ARN, the stack's outputs)`` (outputs empty without a stack).

    Raises:
        Refused: neither a function name nor a stack name, or the stack lacks the output.
        botocore.exceptions.ClientError: the stack does not exist or is not readable.
    """
    outputs: dict[str, str] = {}
    if stack_name:
        outputs = stack_outputs(cloudformation(), stack_name)
    name = function_name or (outputs.get(url_output) if url_output else None) or outputs.get(output)
    if not name:
        if stack_name:
            raise Refused(
                "InvalidArgument", f"stack {stack_name!r} has no {output} output; is it this project's stack?"
            )
        raise Refused(
            "InvalidArgument",
            f"no {what}: pass --function-name or --stack-name (or set "
            f"{env_var}, {ENV_STACK_NAME}, or samconfig.toml stack_name)",
        )
    return name, outputs


@dataclass(frozen=True)
class Target:
    """The issue function to call and where the published CA bundle is.

    Attributes:
        function_name: name or ARN of the issue function (the stack's name output when its URL is called).
        function_url: its function URL when that is what the tools call (SigV4), else None.
        ca_bundle_uri: ``s3://bucket/key`` of the CA bundle, or None when unknown.
        stack_name: the stack the values came from, or None.
    """

    function_name: str
    ca_bundle_uri: str | None
    stack_name: str | None = None
    function_url: str | None = None

    @property
    def callee(self) -> str:
        """What to call: the function URL when there is one, else the name or ARN."""
        return self.function_url or self.function_name


def resolve_target(
    cloudformation: Callable[[], CloudFormationClient],
    *,
    function_name: str | None,
    stack_name: str | None,
    ca_bundle_uri: str | None,
) -> Target:
    """Decide which issue function to invoke and where the CA bundle is.

    ``function_name`` wins over the stack's ``IssueFunctionName`` output; ``ca_bundle_uri``
    over its ``CaBundleS3Uri``. The stack is read only when ``stack_name`` is given.

    Raises:
        Refused: neither a function name nor a stack name, or the stack lacks the output.
    """
    name, outputs = find_function(
        cloudformation,
        function_name=function_name,
        stack_name=stack_name,
        output=OUTPUT_FUNCTION_NAME,
        what="issue function",
        env_var=ENV_FUNCTION_NAME,
        url_output=OUTPUT_FUNCTION_URL,
    )
    url = name if is_function_url(name) else None
    return Target(
        reported_name(name, outputs, OUTPUT_FUNCTION_NAME), ca_bundle_uri or outputs.get(OUTPUT_CA_BUNDLE_URI),
        stack_name, url,
    )  # fmt: skip


def reported_name(called: str, outputs: Mapping[str, str], output: str) -> str:
    """The function name the tools report: the stack's ``output`` (its name) when they called its URL."""
    return outputs.get(output, called) if is_function_url(called) else called


def invoke_function(
    lambda_client: LambdaClient, function_name: str, payload: Mapping[str, Any], what: str = "issue function"
) -> dict[str, Any]:
    """Invoke a CA function synchronously (Lambda ``Invoke``, ``RequestResponse``) with a JSON payload,
    or, when ``function_name`` is a function URL, POST it there signed with SigV4
    (:func:`~certcli.function_url.call_function_url`: same results and refusals).

    Args:
        what: the function's role, for messages ("issue function", "revoke function").

    Returns:
        The decoded response object.

    Raises:
        Refused: the function returned an error (``FunctionError``); code and message are the
            payload's ``errorType`` and ``errorMessage``.
        CliError: the payload is not a JSON object (code ``UnexpectedResponse``).
        botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError: the call failed.
    """
    if is_function_url(function_name):
        return call_function_url(lambda_client, function_name, payload, what)
    response = lambda_client.invoke(
        FunctionName=function_name,
        InvocationType="RequestResponse",
        Payload=json.dumps(payload).encode(),
    )
    raw = response["Payload"].read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if response.get("FunctionError"):
        if isinstance(body, dict) and body.get("errorType"):
            raise Refused(str(body["errorType"]), str(body.get("errorMessage", "")).strip() or "(no message)")
        raise Refused(str(response["FunctionError"]), f"the {what} failed without an error message")
    if not isinstance(body, dict):
        raise CliError("UnexpectedResponse", f"the {what} did not return a JSON object")
    return body
