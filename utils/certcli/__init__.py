"""Shared code of the operator command-line tools ``client-cert.py``, ``server-cert.py``,
``revoke-cert.py`` and ``cloudfront-origin-cert.py``.

``client-cert.py`` and ``server-cert.py`` make a key pair **locally**, build a PKCS#10 CSR
signed by that key, invoke the issue function with the caller's own AWS credentials (IAM is
the authentication), check that the certificate returned matches the key and chains to the CA,
and write the files a TLS client or server needs. The private key never leaves this machine and
is never printed. ``revoke-cert.py`` invokes the revoke function for a serial number or a
certificate file (see :func:`revoke_main`). ``cloudfront-origin-cert.py`` requests the
``cloudfront-origin`` profile: no CSR, the issue function generates the key and imports
certificate, key and chain into ACM in us-east-1; the tool prints the ACM ARN and the
``OriginMtlsConfig`` to paste into a distribution (see :func:`origin_main`).

Everything that talks to AWS goes through boto3 with the standard configuration chain
(``--profile``, ``--region``, ``AWS_*`` environment variables, ``AWS_ENDPOINT_URL`` for the
local sandbox), so the same command works against a real deployment and against the sandbox.
The function to call comes from ``--function-name`` or from the stack's outputs
(``IssueFunctionName``, ``RevokeFunctionName``); see :func:`add_aws_arguments`.

Exit codes (see :func:`main`, :func:`revoke_main`, :func:`origin_main`): 0 done; 1 failure (AWS call failed,
unexpected response, I/O error); 2 refused (bad arguments, files already exist, or the CA
function returned an error such as ``LifetimeExceeded`` or ``CertificateNotFound``). Every
error is printed to stderr as one line ``error: <Code>: <message>``; codes of the CA
functions are passed through unchanged (:func:`run_reporting`).

Modules:

- :mod:`.errors`: :class:`CliError`, :class:`Refused` and the exit statuses.
- :mod:`.keys`: key types, key generation, the CSR.
- :mod:`.names`: ``--san`` parsing and the subject attributes.
- :mod:`.contract`: the issue function's request and the checks of its response.
- :mod:`.aws`: boto3 clients, the shared AWS options, samconfig.toml, stack outputs, Lambda invoke.
- :mod:`.bundle`: the published CA bundle.
- :mod:`.files`: output plans, atomic writes, PKCS#12.
- :mod:`.report`: the shell of every CLI: error reporting, exit status, JSON or text output.
- :mod:`.issue`: ``client-cert.py`` / ``server-cert.py`` (:func:`main`).
- :mod:`.revoke`: ``revoke-cert.py`` (:func:`revoke_main`).
- :mod:`.origin`: ``cloudfront-origin-cert.py`` (:func:`origin_main`).
- :mod:`.inventory`: ``certs.py`` (:func:`~.inventory.certs_main`).
- :mod:`.targets`: ``edge-targets.py`` (:func:`~.targets.targets_main`).
- :mod:`.policy`: ``issuance-policy.py`` (:func:`~.policy.policy_main`; Python 3.11+, it validates with the CA core).
- :mod:`.scripts`: the console scripts (``kmsca-client-cert`` ...) that ``pyproject.toml`` installs.

Installed with the CA core by ``pip install .`` (``pyproject.toml``: packages ``certcli`` and
``kmsca``); certcli imports the core's names (``kmsca.serial``, ``kmsca.errors``,
``kmsca.reasons``) as an installed package and copies none. This package re-exports the public
names of those modules as one flat namespace.
"""

from __future__ import annotations

from .aws import (
    DEFAULT_TIMEOUT_SECONDS,
    ENV_FUNCTION_NAME,
    ENV_REVOKE_FUNCTION_NAME,
    ENV_STACK_NAME,
    OUTPUT_CA_BUNDLE_URI,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_REVOKE_FUNCTION_NAME,
    AwsClients,
    Target,
    add_aws_arguments,
    clients_for,
    default_stack_name,
    find_function,
    function_and_stack,
    invoke_function,
    resolve_target,
    samconfig_region,
    stack_outputs,
)
from .bundle import bundle_from_chain, check_bundle_trusts, download_ca_bundle, parse_s3_uri
from .contract import CLIENT, SERVER, CliIssueRequest, Issued, check_issued, serial_to_hex
from .errors import EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, CliError, NotSaved, Refused
from .files import (
    OutputFile,
    OutputPlan,
    check_writable,
    conflicts,
    default_name,
    make_pkcs12,
    plan_outputs,
    read_pkcs12_password,
    render_files,
    write_outputs,
)
from .issue import (
    ENV_PKCS12_PASSWORD,
    Options,
    build_parser,
    invoke_issue,
    issue,
    main,
    parse_options,
    print_summary,
    summary,
)
from .keys import DEFAULT_KEY_TYPE, KEY_TYPES, KeyType, PrivateKey, build_csr, generate_private_key
from .names import RequestedSubject, San, add_subject_arguments, idn_notes, parse_san, subject_from_args
from .origin import (
    ACM_REGION,
    CLOUDFRONT_ORIGIN,
    ORIGIN_KEY_TYPES,
    OriginIssued,
    OriginOptions,
    build_origin_parser,
    check_origin_issued,
    check_origin_key_type,
    issue_origin,
    origin_main,
    origin_mtls_config,
    origin_summary,
    parse_origin_options,
    plan_origin_outputs,
    print_origin_summary,
)
from .report import Outcome, explain_aws_error, run_cli, run_reporting
from .revoke import (
    CA_ONLY_REASONS,
    REVOCATION_REASONS,
    RevokeOptions,
    build_revoke_parser,
    canonical_serial,
    check_revoked,
    load_certificate_file,
    parse_invalidity_date,
    parse_reason,
    parse_revoke_options,
    print_revocation,
    revoke,
    revoke_main,
    revoke_summary,
)

__all__ = [
    "ACM_REGION",
    "CA_ONLY_REASONS",
    "CLIENT",
    "CLOUDFRONT_ORIGIN",
    "DEFAULT_KEY_TYPE",
    "DEFAULT_TIMEOUT_SECONDS",
    "ENV_FUNCTION_NAME",
    "ENV_PKCS12_PASSWORD",
    "ENV_REVOKE_FUNCTION_NAME",
    "ENV_STACK_NAME",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_REFUSED",
    "KEY_TYPES",
    "ORIGIN_KEY_TYPES",
    "OUTPUT_CA_BUNDLE_URI",
    "OUTPUT_FUNCTION_NAME",
    "OUTPUT_REVOKE_FUNCTION_NAME",
    "REVOCATION_REASONS",
    "SERVER",
    "AwsClients",
    "CliError",
    "CliIssueRequest",
    "Issued",
    "KeyType",
    "NotSaved",
    "Options",
    "OriginIssued",
    "OriginOptions",
    "Outcome",
    "OutputFile",
    "OutputPlan",
    "PrivateKey",
    "Refused",
    "RequestedSubject",
    "RevokeOptions",
    "San",
    "Target",
    "add_aws_arguments",
    "add_subject_arguments",
    "build_csr",
    "build_origin_parser",
    "build_parser",
    "build_revoke_parser",
    "bundle_from_chain",
    "canonical_serial",
    "check_bundle_trusts",
    "check_issued",
    "check_origin_issued",
    "check_origin_key_type",
    "check_revoked",
    "check_writable",
    "clients_for",
    "conflicts",
    "default_name",
    "default_stack_name",
    "download_ca_bundle",
    "explain_aws_error",
    "find_function",
    "function_and_stack",
    "generate_private_key",
    "idn_notes",
    "invoke_function",
    "invoke_issue",
    "issue",
    "issue_origin",
    "load_certificate_file",
    "main",
    "make_pkcs12",
    "origin_main",
    "origin_mtls_config",
    "origin_summary",
    "parse_invalidity_date",
    "parse_options",
    "parse_origin_options",
    "parse_reason",
    "parse_revoke_options",
    "parse_s3_uri",
    "parse_san",
    "plan_origin_outputs",
    "plan_outputs",
    "print_origin_summary",
    "print_revocation",
    "print_summary",
    "read_pkcs12_password",
    "render_files",
    "resolve_target",
    "revoke",
    "revoke_main",
    "revoke_summary",
    "run_cli",
    "run_reporting",
    "samconfig_region",
    "serial_to_hex",
    "stack_outputs",
    "subject_from_args",
    "summary",
    "write_outputs",
]
