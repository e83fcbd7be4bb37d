"""Two accounts: the CA's and a workload account (222222222222, its edge stack deployed by the
sandbox). The workload account's edge stack becomes an edge target, a per-caller issuance policy
is stored, a caller of the workload account gets what its rule allows and nothing else, an origin
certificate lands in the workload account's ACM us-east-1, and a revocation reaches its
KeyValueStore, where its connection function denies the certificate."""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

from utils.demo.constants import (
    ACM_REGION,
    CLIENT_CN,
    CONNECTION_DIR,
    ORIGIN_CN,
    REPO,
    REVOCATION_REASON,
    REVOKED_CN,
    SERVER_CN,
    TLS_HOST,
    WORKLOAD_ACCOUNT,
    WORKLOAD_TARGET,
)
from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail
from utils.demo.state import EdgeTarget, Issued, WorkloadCaller, require
from utils.demo.steps.cloudfront import client_error_code, export_kvs, kvs_items, run_connection_cases, wait_for_key

DEMO_ORGANIZATION = "KMS CA demo"  # the client certificates' organization (steps client_cert, second_client)
DEMO_URI_PREFIX = "spiffe://demo.example/"  # the client certificate's URI SAN
CALLER_USER = "pipeline"  # the workload account's IAM user that requests certificates
CALLER_CN = "api.workload.example"  # what its rule allows (under .workload.example)
REFUSED_CN = "www.example.com"  # what its rule does not allow
WORKLOAD_ORIGIN_CN = "origin.workload.example"
CALLER_LIFETIME_DAYS = 30
CA_MAX_LIFETIME_DAYS = 365  # the stack's MaxLifetimeDays (template default): the CA-account rule's limit
CA_RULE, WORKLOAD_RULE = "ca-account", "workload-pipeline"
SHOWN_CALLER = "AWS_ACCESS_KEY_ID=<pipeline's key> AWS_SECRET_ACCESS_KEY=<...> "


def _error_code(stderr: str) -> str:
    """The code of a CLI's ``error: <Code>: <message>`` line (empty when there is none)."""
    line = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return line.split(":", 2)[1].strip() if line.startswith("error:") and line.count(":") >= 2 else ""


def _json(result: Any, what: str) -> Any:
    """The JSON a CLI printed; StepFailed naming ``what`` when it failed or printed no JSON."""
    if result.returncode != 0:
        raise StepFailed(f"{what} exited with status {result.returncode}: {result.stderr.strip()}")
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise StepFailed(f"{what} printed no JSON: {result.stdout[:300]!r}") from None


def _edge_stack(demo: Demo) -> tuple[str, Mapping[str, Any]]:
    """The workload account's edge stack in the state file (``stacks``): its key and entry."""
    for key, stack in demo.sandbox.state.get("stacks", {}).items():
        if stack.get("account_id") == WORKLOAD_ACCOUNT:
            return key, stack
    raise StepFailed(
        f"the sandbox deployed no edge stack in {WORKLOAD_ACCOUNT} (start it with --workload-account "
        f"{WORKLOAD_ACCOUNT} --deploy-edge)"
    )


def _target_names(demo: Demo, env: dict[str, str]) -> dict[str, Mapping[str, Any]]:
    listed = _json(demo.cli("edge-targets.py", "list", "--json", env=env), "edge-targets.py list")
    return {t["name"]: t for t in listed["targets"]}


def step_edge_target(demo: Demo) -> str:
    """utils/edge-targets.py register: refused with a wrong external id (nothing written), then
    registered with the edge stack's; ``list`` shows ``local`` and ``workload``."""
    key, stack = _edge_stack(demo)
    outputs, external_id = stack.get("outputs", {}), stack.get("parameters", {}).get("ExternalId", "")
    role_arn, kvs_arn = outputs.get("EdgeRoleArn", ""), outputs.get("RevokedSerialsStoreArn", "")
    if not (role_arn and kvs_arn and external_id):
        raise StepFailed(f"the edge stack {key} lacks EdgeRoleArn, RevokedSerialsStoreArn or its ExternalId")
    detail(f"edge stack {key} in {WORKLOAD_ACCOUNT}: EdgeRoleArn {role_arn}")
    detail(f"  RevokedSerialsStoreArn {kvs_arn}")
    detail("as the CA administrator (TargetAdminPolicy; state file: admin):")
    admin = demo.admin_credentials()
    args = ["register", WORKLOAD_TARGET, "--account-id", WORKLOAD_ACCOUNT, "--role-arn", role_arn,
            "--kvs-arn", kvs_arn]  # fmt: skip

    wrong = demo.cli("edge-targets.py", *args, env=demo.env_with(admin, KMSCA_EDGE_EXTERNAL_ID=str(uuid.uuid4())),
                     shown_env="KMSCA_EDGE_EXTERNAL_ID=<another id> ")  # fmt: skip
    detail(f"exit status {wrong.returncode}: {wrong.stderr.strip()[:300]}")
    if wrong.returncode == 0 or _error_code(wrong.stderr) != "EdgeRoleRefused":
        raise StepFailed("a registration with a wrong external id was not refused with EdgeRoleRefused")
    if WORKLOAD_TARGET in _target_names(demo, demo.env_with(admin)):
        raise StepFailed(f"the refused registration wrote the target {WORKLOAD_TARGET!r}")
    detail(f"  refused (EdgeRoleRefused: the edge role's trust needs the external id); no target {WORKLOAD_TARGET!r}")

    done = demo.cli("edge-targets.py", *args, env=demo.env_with(admin, KMSCA_EDGE_EXTERNAL_ID=external_id),
                    shown_env="KMSCA_EDGE_EXTERNAL_ID=<the edge stack's ExternalId> ")  # fmt: skip
    if done.returncode != 0:
        raise StepFailed(f"edge-targets.py register exited with status {done.returncode}: {done.stderr.strip()}")
    targets = _target_names(demo, demo.env_with(admin))
    for name, target in targets.items():
        detail(f"  {name}: account {target['account_id']}, role {target['role_arn']}")
    registered = targets.get(WORKLOAD_TARGET)
    if "local" not in targets or registered is None:
        raise StepFailed(f"edge-targets.py list shows {sorted(targets)}, not local and {WORKLOAD_TARGET}")
    wanted = {"account_id": WORKLOAD_ACCOUNT, "role_arn": role_arn, "kvs_arn": kvs_arn}
    if {k: registered.get(k) for k in wanted} != wanted:
        raise StepFailed(f"the registered target is {dict(registered)}, not {wanted}")
    demo.state.edge_target = EdgeTarget(WORKLOAD_TARGET, WORKLOAD_ACCOUNT, role_arn, kvs_arn, key)
    return f"wrong external id refused (EdgeRoleRefused, nothing written); targets: {', '.join(sorted(targets))}"


def policy_document(ca_account: str) -> dict[str, Any]:
    """The demo's issuance policy: the CA account's callers get what the earlier steps issued (and
    any revocation); the workload account's pipeline gets client certificates under
    ``.workload.example`` for 30 days at most and revokes its own."""
    return {
        "version": 1,
        "rules": [
            {
                "name": CA_RULE,
                "principals": {"accounts": [ca_account]},
                "profiles": ["client", "server", "cloudfront-origin"],
                "dns_names": [SERVER_CN, ORIGIN_CN, WORKLOAD_ORIGIN_CN],
                "common_names": [CLIENT_CN, REVOKED_CN],
                "subject": {"organization": [DEMO_ORGANIZATION]},
                "ip_ranges": [f"{TLS_HOST}/32"],
                "uri_prefixes": [DEMO_URI_PREFIX],
                "max_lifetime_days": CA_MAX_LIFETIME_DAYS,
                "may_revoke": "any",
                "edge_targets": ["local", WORKLOAD_TARGET],  # where its origin certificates may be imported
            },
            {
                "name": WORKLOAD_RULE,
                "principals": {"arns": [f"arn:aws:iam::{WORKLOAD_ACCOUNT}:user/{CALLER_USER}"]},
                "profiles": ["client"],
                "dns_suffixes": [".workload.example"],
                "max_lifetime_days": CALLER_LIFETIME_DAYS,
                "may_revoke": "own",
            },
        ],
    }


def _ca_account(demo: Demo) -> str:
    return str(demo.sandbox.state["outputs"]["IssueFunctionArn"].split(":")[4])


def _check_earlier(demo: Demo, text: str) -> list[str]:
    """The CA core's verdict (the functions' code) on the earlier certificates, as the operator
    would request them again under the stored document: one line per certificate.

    Raises:
        StepFailed: the document refuses one of them.
    """
    from cryptography import x509

    layer = str(REPO / "layers" / "ca")
    if layer not in sys.path:
        sys.path.append(layer)
    import boto3
    from kmsca.caller_policy import Caller, grant_for
    from kmsca.errors import CaError
    from kmsca.policy_document import parse_document

    state = demo.sandbox.state
    operator = state["operator"]
    sts = boto3.client(
        "sts", endpoint_url=state["endpoint_url"], region_name=state["region"],
        aws_access_key_id=operator["AWS_ACCESS_KEY_ID"], aws_secret_access_key=operator["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip
    operator_arn = sts.get_caller_identity()["Arn"]
    document = parse_document(text)
    lines = []
    earlier = [("client_cert", demo.state.client), ("server_cert", demo.state.server),
               ("second_client", demo.state.revoked), ("origin_cert", demo.state.origin)]  # fmt: skip
    for step, issued in earlier:
        if issued is None:
            continue
        cert = x509.load_pem_x509_certificate(issued.certificate.read_bytes())
        try:
            sans = list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            sans = []
        lifetime = math.floor((cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() / 86400)
        profile = str(issued.summary.get("profile", "client"))
        try:
            grant = grant_for(document, Caller(operator_arn, _ca_account(demo)), _ca_account(demo))
            grant.check_issue(profile, cert.subject, sans, lifetime)
        except CaError as exc:
            raise StepFailed(f"the policy would refuse {step}'s certificate to {operator_arn}: {exc.message}") from None
        lines.append(f"{step}: {profile} {cert.subject.rfc4514_string()}, {lifetime} days -> allowed by "
                     f"{grant.rule.name if grant.rule else '(global limits)'}")  # fmt: skip
    return lines


def step_issuance_policy(demo: Demo) -> str:
    """utils/issuance-policy.py check, put, get (as the CA administrator: PolicyAdminPolicy)."""
    document = policy_document(_ca_account(demo))
    text = json.dumps(document, indent=2) + "\n"
    path = demo.out_dir / "issuance-policy.json"
    path.write_text(text, encoding="utf-8")
    for rule in document["rules"]:
        limits = {k: v for k, v in rule.items() if k not in ("name", "principals")}
        detail(f"rule {rule['name']}: principals {json.dumps(rule['principals'])}")
        detail(f"  {json.dumps(limits)}")
    admin = demo.env_with(demo.admin_credentials())
    detail("as the CA administrator (PolicyAdminPolicy; state file: admin):")
    checked = demo.cli("issuance-policy.py", "check", str(path), env=admin, stack=False)
    if checked.returncode != 0:
        raise StepFailed(f"issuance-policy.py check refused the document: {checked.stderr.strip()}")
    detail("  " + checked.stdout.strip())
    stored = _json(demo.cli("issuance-policy.py", "put", str(path), env=admin), "issuance-policy.py put")
    detail(f"  revision {stored['revision']}, updated by {stored['updated_by']}")
    got = demo.cli("issuance-policy.py", "get", env=admin)
    if got.returncode != 0:
        raise StepFailed(f"issuance-policy.py get exited with status {got.returncode}: {got.stderr.strip()}")
    detail(f"  {got.stderr.strip()}")
    if json.loads(got.stdout) != document:
        raise StepFailed("issuance-policy.py get shows another document than the one stored")
    detail(f"  get: the stored document ({len(got.stdout.encode())} bytes) is the one put")
    detail("the earlier steps' certificates under the stored document (the CA core's check, first rule that matches):")
    for line in _check_earlier(demo, got.stdout):
        detail("  " + line)
    demo.state.policy_revision = int(stored["revision"])
    return f"revision {stored['revision']}: rules {CA_RULE} (CA account) and {WORKLOAD_RULE} ({WORKLOAD_ACCOUNT})"


def _function_arns(demo: Demo) -> tuple[str, str]:
    """The CA's issue and revoke function ARNs (the IssueFunctionArn output, RevokeFunctionName)."""
    outputs = demo.sandbox.state["outputs"]
    issue = outputs["IssueFunctionArn"]
    return issue, f"{issue.rsplit(':', 1)[0]}:{outputs['RevokeFunctionName']}"


def step_workload_caller(demo: Demo) -> str:
    """The workload administrator creates an IAM user (IAM API); it gets a client certificate under
    its rule and is refused a name outside it, with nothing stored."""
    require(demo.state.policy_revision, "the issuance policy")
    issue_arn, revoke_arn = _function_arns(demo)
    iam = demo.client("iam", account=WORKLOAD_ACCOUNT)
    statement = {"Effect": "Allow", "Action": ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"],
                 "Resource": [issue_arn, revoke_arn]}  # fmt: skip
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    detail(f"as the administrator of {WORKLOAD_ACCOUNT} (IAM API, state file: admins):")
    detail(f"  iam create-user --user-name {CALLER_USER}")
    detail(f"  iam put-user-policy --user-name {CALLER_USER} --policy-name kmsca-caller --policy-document "
           f"{json.dumps(policy)}")  # fmt: skip
    detail(f"  iam create-access-key --user-name {CALLER_USER}")
    try:
        user = iam.create_user(UserName=CALLER_USER)["User"]
        iam.put_user_policy(UserName=CALLER_USER, PolicyName="kmsca-caller", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=CALLER_USER)["AccessKey"]
    except Exception as exc:  # botocore ClientError
        raise StepFailed(f"the workload account's IAM refused: {type(exc).__name__}: {exc}") from None
    arn = user["Arn"]
    detail(f"  -> {arn}, access key {key['AccessKeyId']}")
    credentials = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    caller_env = demo.env_with(credentials)
    issue_url = demo.sandbox.state["outputs"]["IssueFunctionUrl"]

    detail(f"as {CALLER_USER} (it cannot read the CA stack: the function URL is given):")
    result = demo.cli("client-cert.py", CALLER_CN, "--lifetime-days", str(CALLER_LIFETIME_DAYS), "--function-name",
                      issue_url, "--out-dir", str(demo.out_dir), "--name", "workload-api", "--force", "--json",
                      env=caller_env, shown_env=SHOWN_CALLER, stack=False)  # fmt: skip
    issued = Issued.from_summary(_json(result, "client-cert.py"))
    detail(f"  serial {issued.serial_number}  subject {issued.subject}  not after {issued.not_after}")

    detail("the inventory, as the CA operator:")
    shown = _json(demo.cli("certs.py", "show", issued.serial_number, "--json"), "certs.py show")
    detail(f"  requested_by {shown.get('requested_by')}, profile {shown.get('profile')}, status {shown.get('status')}")
    if shown.get("requested_by") != arn:
        raise StepFailed(f"the inventory records requested_by {shown.get('requested_by')!r}, not {arn}")

    refused = demo.cli("client-cert.py", REFUSED_CN, "--lifetime-days", str(CALLER_LIFETIME_DAYS), "--function-name",
                       issue_url, "--out-dir", str(demo.out_dir), "--name", "workload-refused", "--json",
                       env=caller_env, shown_env=SHOWN_CALLER, stack=False)  # fmt: skip
    message = refused.stderr.strip()
    detail(f"  exit status {refused.returncode}: {message[:300]}")
    if refused.returncode == 0 or _error_code(message) != "NotAuthorized" or f"'{WORKLOAD_RULE}'" not in message:
        raise StepFailed(f"{REFUSED_CN} was not refused with NotAuthorized naming rule {WORKLOAD_RULE}")
    if leftovers := sorted(p.name for p in demo.out_dir.glob("workload-refused*")):
        raise StepFailed(f"files were written for a refused request: {leftovers}")
    listed = _json(demo.cli("certs.py", "list", "--name", REFUSED_CN, "--all", "--json"), "certs.py list")
    found = listed.get("certificates", [])
    detail(f"  certs.py list --name {REFUSED_CN}: {len(found)} certificates")
    if found:
        raise StepFailed(f"the inventory holds {len(found)} certificates for {REFUSED_CN} after the refusal")
    demo.state.workload_caller = WorkloadCaller(arn, credentials, issued)
    return (f"{CALLER_CN} issued to {arn} (requested_by recorded); {REFUSED_CN} refused "
            f"(NotAuthorized, rule {WORKLOAD_RULE}), nothing stored")  # fmt: skip


def step_workload_origin(demo: Demo) -> str:
    """cloudfront-origin-cert.py --target workload: the certificate is in the workload account's ACM
    us-east-1 and not in the CA account's."""
    target = require(demo.state.edge_target, "the workload edge target")
    require(demo.state.policy_revision, "the issuance policy")
    result = demo.cli("cloudfront-origin-cert.py", WORKLOAD_ORIGIN_CN, "--san", f"dns:{WORKLOAD_ORIGIN_CN}",
                      "--target", target.name, "--out-dir", str(demo.out_dir), "--name", "workload-origin",
                      "--force", "--json")  # fmt: skip
    info = _json(result, "cloudfront-origin-cert.py")
    issued = demo.state.workload_origin = Issued.from_summary(info)
    arn = str(info.get("acm_certificate_arn", ""))
    parts = arn.split(":")
    account, region = (parts[4], parts[3]) if len(parts) >= 6 else ("?", "?")
    detail(f"serial {issued.serial_number}  subject {issued.subject}; acm_target {info.get('acm_target')}, "
           f"acm_account_id {info.get('acm_account_id')}")  # fmt: skip
    detail(f"ACM ARN {arn}: account {account}, region {region}")
    if (account, region) != (target.account_id, ACM_REGION):
        raise StepFailed(f"the certificate is in account {account} {region}, not {target.account_id} {ACM_REGION}")
    try:
        workload_acm = demo.client("acm", ACM_REGION, account=target.account_id)
        described = workload_acm.describe_certificate(CertificateArn=arn)["Certificate"]
    except Exception as exc:  # botocore ClientError
        raise StepFailed(f"the workload account's ACM cannot describe {arn}: {exc}") from None
    detail(f"as the workload administrator: acm describe-certificate ({ACM_REGION}): Status {described.get('Status')}, "
           f"DomainName {described.get('DomainName')}, Serial {described.get('Serial')}")  # fmt: skip
    ca_acm = demo.client("acm", ACM_REGION)
    try:
        ca_acm.describe_certificate(CertificateArn=arn)
        ca_code = "FOUND"
    except Exception as exc:  # botocore ClientError: expected
        ca_code = client_error_code(exc) or type(exc).__name__
    ca_arns = [c["CertificateArn"] for c in ca_acm.list_certificates().get("CertificateSummaryList", [])]
    detail(f"as the CA administrator: acm describe-certificate ({ACM_REGION}): {ca_code}; list-certificates: "
           f"{len(ca_arns)} certificates, {'WITH' if arn in ca_arns else 'without'} this one")  # fmt: skip
    if described.get("Status") != "ISSUED" or described.get("DomainName") != WORKLOAD_ORIGIN_CN:
        raise StepFailed(f"the workload account's ACM holds {described.get('DomainName')} {described.get('Status')}")
    if ca_code == "FOUND" or arn in ca_arns:
        raise StepFailed("the CA account's ACM us-east-1 has the workload's certificate too")
    return f"{arn}: ISSUED in the workload account's ACM {ACM_REGION}; the CA account's ACM: {ca_code}"


def step_workload_revoke(demo: Demo) -> str:
    """The workload caller revokes its certificate; the serial reaches the workload account's
    KeyValueStore; the workload stack's connection function denies it and allows a good one."""
    target = require(demo.state.edge_target, "the workload edge target")
    caller = require(demo.state.workload_caller, "the workload caller")
    good = require(demo.state.client, "the client certificate")
    if shutil.which("node") is None:
        raise StepFailed("Node.js is not installed, so the connection function cannot run (Node 18 or later)")
    revoke_url = demo.sandbox.state["outputs"]["RevokeFunctionUrl"]
    result = demo.cli("revoke-cert.py", "--cert", str(caller.issued.certificate), "--reason", REVOCATION_REASON,
                      "--function-name", revoke_url, "--json", env=demo.env_with(dict(caller.credentials)),
                      shown_env=SHOWN_CALLER, stack=False)  # fmt: skip
    recorded = time.monotonic()
    answer = _json(result, "revoke-cert.py")
    serial = caller.issued.serial_number
    detail(f"revoked {answer.get('serial_number')} at {answer.get('revoked_at')} ({answer.get('reason')})")
    if answer.get("serial_number") != serial or answer.get("already_revoked"):
        raise StepFailed(f"revoke-cert.py answered {answer}")

    kvs = demo.kvs_client(target.account_id)
    detail(f"as the workload administrator: the workload account's KeyValueStore {target.kvs_arn}")
    item, _, polls = wait_for_key(demo, kvs, target.kvs_arn, serial)
    since = time.monotonic() - recorded
    detail(f"get_key: {item['Key']} = {item['Value']!r} after {polls} {'poll' if polls == 1 else 'polls'}")
    detail(f"revoke -> serial in the workload account's KeyValueStore: {since:.2f} s")
    expected = f"{answer.get('revoked_at')} {REVOCATION_REASON}"
    if item["Value"] != expected:
        raise StepFailed(f"the value is {item['Value']!r}, expected {expected!r}")
    items = kvs_items(kvs, target.kvs_arn)
    export = export_kvs(demo, items, "workload-kvs-items.json")
    detail(f"list_keys: {len(items)} {'key' if len(items) == 1 else 'keys'}; exported to {demo.shown(str(export))}")

    stack = demo.sandbox.state.get("stacks", {}).get(target.stack_key, {})
    functions = list(stack.get("connection_functions", {}).values())
    deployed = next((f for f in functions if target.kvs_arn in f.get("key_value_store_arns", [])), None)
    if deployed is None or not deployed.get("code"):
        raise StepFailed(f"the edge stack {target.stack_key} has no connection function associated with its store")
    directory = demo.work / "workload-connection"
    directory.mkdir(exist_ok=True)
    (directory / "connection.js").write_text(deployed["code"], encoding="utf-8")
    harness = directory / "harness.mjs"
    shutil.copyfile(CONNECTION_DIR / "harness.mjs", harness)
    detail(f"the workload stack's {deployed.get('name')} ({deployed.get('runtime')}, stage {deployed.get('stage')}): "
           f"{len(deployed['code'].encode())} bytes, associated with {target.kvs_arn}")  # fmt: skip
    run_connection_cases(demo, harness, caller.issued, good, export)
    return (f"{serial} in the workload account's KeyValueStore {since:.1f} s after revoke; its connection "
            f"function denies it and allows the good certificate")  # fmt: skip
