"""template.yaml's IAM, table-driven: per function, the (action, resource, condition context) of
every AWS call its code path makes, checked against the function's inline statements.

Each function must be allowed every call in its table, and every statement it has must be used
by at least one call (nothing beyond the code's need). The IAM action is the API operation's
name (BatchGetItem needs dynamodb:BatchGetItem; TransactWriteItems is authorised per inner Put or
Update; S3 HeadObject needs s3:GetObject, and s3:ListBucket on the bucket to answer 404 rather
than 403 for a missing key; a Query of an index is authorised on the index ARN; ImportCertificate
with Tags is also authorised as acm:AddTagsToCertificate).

Resources are resolved symbolically: ``!GetAtt X.Arn`` is ``arn:aws:X``, so ``${PublicBucket.Arn}/*``
is ``arn:aws:PublicBucket/*``. Conditions are evaluated for the operators the template uses.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest
from kmsca.table_keys import (
    ca_key,
    certificate_key,
    crl_number_key,
    idempotency_key,
    kvs_state_key,
    notice_key,
    policy_key,
    renewal_key,
    targets_key,
)

from tests.support import template_symbols
from tests.support.aws import TEMPLATE
from tests.support.template_symbols import as_list
from utils.sandbox.iam_policy import RequestContext, evaluate

ACCOUNT = "111122223333"
REGION = "eu-west-1"
STACK = "kmsca-dev"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::StackName": STACK,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/0",
    "TrustStoreId": "ts-1",
}

TABLE = "arn:aws:CaTable"
PUBLIC = "arn:aws:PublicBucket"
INTERNAL = "arn:aws:InternalBucket"
ROOT_KEY = "arn:aws:RootCaKey"
ISSUING_KEY = "arn:aws:IssuingCaKey"
TOPIC_KEY = "arn:aws:NotificationTopicKey"
TOPIC = "ref:NotificationTopic"
KVS = "EdgeStack.Outputs.RevokedSerialsStoreArn"  # the nested edge stack's store
TRUST_STORE = f"arn:aws:cloudfront::{ACCOUNT}:trust-store/ts-1"
ACM_NEW = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/11111111-new"
ACM_MANAGED = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/22222222-managed"
ACM_FOREIGN = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/33333333-foreign"
WORKLOAD = "222222222222"
EDGE_ROLE = f"arn:aws:iam::{WORKLOAD}:role/kmsca-dev-edge-us-east-1"  # edge/template.yaml's EdgeRole
EDGE_ROLE_LOCAL = f"arn:aws:iam::{ACCOUNT}:role/kmsca-dev-edge-{REGION}"

LK = "dynamodb:LeadingKeys"
VIA_SNS = {"kms:ViaService": f"sns.{REGION}.amazonaws.com"}
CA_TAGS = {"aws:RequestTag/managed-by": "kmsca", "aws:TagKeys": ["kmsca:serial-number", "kmsca:ca", "managed-by"]}
MANAGED = {"aws:ResourceTag/managed-by": "kmsca"}

Call = tuple[str, str, dict[str, Any]]


def call(action: str, resource: str, **context: Any) -> Call:
    return (action, resource, {k.replace("__", ":").replace("_slash_", "/"): v for k, v in context.items()})


BUS = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"


def put_events(*detail_types: str) -> list[Call]:
    """PutEvents of one entry per detail-type from the stack's source (each entry is authorised alone)."""
    return [("events:PutEvents", BUS, {"events:source": "kmsca.dev", "events:detail-type": d}) for d in detail_types]


def item(action: str, *keys: str) -> Call:
    return (action, TABLE, {LK: list(keys)})


def objects(actions: tuple[str, ...], bucket: str, *keys: str) -> list[Call]:
    return [(action, f"{bucket}/{key}", {}) for action in actions for key in keys]


CA_ARTEFACTS = ("root.crt", "root.pem", "issuing.crt", "issuing.pem", "ca-bundle.pem")
CRLS = ("root.crl", "root.crl.pem", "issuing.crl", "issuing.crl.pem")
PRESIGNED = ("ocsp/root-signed/0a1b.sha1.der", "ocsp/root-signed/0a1b.sha256.der")
NOTIFY = [("sns:Publish", TOPIC, {}), ("kms:GenerateDataKey", TOPIC_KEY, VIA_SNS), ("kms:Decrypt", TOPIC_KEY, VIA_SNS)]

# What each function's code calls (grep boto3 calls in layers/ca/kmsca and functions/); table keys are
# built by kmsca.table_keys, as the code builds them, so the template is checked against its layout.
NEEDS: dict[str, list[Call]] = {
    "BootstrapFunction": [
        item("dynamodb:BatchGetItem", ca_key("root"), ca_key("issuing")),  # store.get_cas
        item("dynamodb:PutItem", ca_key("root")),  # store.put_ca (conditional)
        item("dynamodb:PutItem", ca_key("issuing")),  # store.replace_ca (re-issue, conditional on the serial)
        ("kms:GetPublicKey", ROOT_KEY, {}),
        ("kms:Sign", ROOT_KEY, {}),  # root self-signature, issuing CA certificate
        ("kms:GetPublicKey", ISSUING_KEY, {}),
        *objects(("s3:GetObject", "s3:PutObject"), PUBLIC, *CA_ARTEFACTS),  # publish: HeadObject + PutObject
        ("s3:ListBucket", PUBLIC, {}),  # HeadObject of a missing artefact: 404, not 403
        ("cloudfront:GetTrustStore", TRUST_STORE, {}),  # update_trust_store (TrustStoreId set)
        ("cloudfront:UpdateTrustStore", TRUST_STORE, {}),
        *objects(("s3:GetObject", "s3:GetObjectVersion"), PUBLIC, "ca-bundle.pem"),  # UpdateTrustStore reads it
        item("dynamodb:GetItem", targets_key()),  # edge_truststores: every registered target
        ("sts:AssumeRole", EDGE_ROLE, {}),  # its trust store through its edge role
    ],
    "IssueFunction": [
        item("dynamodb:BatchGetItem", ca_key("root"), ca_key("issuing")),  # load_issuing_ca (cold start)
        item("dynamodb:GetItem", idempotency_key("ab12")),  # get_idempotency
        item("dynamodb:GetItem", policy_key()),  # policy_store.load (function-URL callers)
        item("dynamodb:PutItem", certificate_key("0a1b")),  # put_certificate / TransactWriteItems Put
        item("dynamodb:PutItem", idempotency_key("ab12")),  # TransactWriteItems Put
        item("dynamodb:GetItem", certificate_key("0a1b")),  # renewal.plan_renewal: the predecessor
        item("dynamodb:ConditionCheckItem", certificate_key("0a1b")),  # renewal transaction: predecessor still issued
        item("dynamodb:PutItem", renewal_key("0a1b")),  # renewal transaction: the link, once
        ("kms:GetPublicKey", ISSUING_KEY, {}),
        ("kms:Sign", ISSUING_KEY, {}),
        ("acm:ImportCertificate", ACM_NEW, CA_TAGS),  # import_new, tags on create
        ("acm:AddTagsToCertificate", ACM_NEW, CA_TAGS),  # ImportCertificate with Tags
        ("acm:DeleteCertificate", ACM_MANAGED, MANAGED),  # _forget_import
        item("dynamodb:GetItem", targets_key()),  # acm_targets.resolve (cloudfront-origin only)
        ("sts:AssumeRole", EDGE_ROLE, {}),  # the target's ACM us-east-1 through its edge role
    ],
    "RevokeFunction": [
        item("dynamodb:UpdateItem", certificate_key("0a1b")),  # store.revoke
        item("dynamodb:GetItem", policy_key()),  # policy_store.load (function-URL callers)
        item("dynamodb:GetItem", certificate_key("0a1b")),  # revocation: may_revoke own/matching reads the record
    ],
    "InventoryFunction": [
        ("dynamodb:Query", f"{TABLE}/index/ByCaExpiry", {}),  # inventory.list_page
        item("dynamodb:GetItem", certificate_key("0a1b")),  # inventory.show
        item("dynamodb:GetItem", renewal_key("0a1b")),  # store.get_renewal
    ],
    "ExpiryFunction": [
        ("dynamodb:Query", f"{TABLE}/index/ByCaExpiry", {}),  # expiring certificates, due supersessions
        item("dynamodb:BatchGetItem", ca_key("root"), ca_key("issuing")),  # CA certificates
        item("dynamodb:PutItem", notice_key("0a1b", 30)),  # claim a notice
        item("dynamodb:DeleteItem", notice_key("0a1b", 30)),  # release it when its event failed
        item("dynamodb:UpdateItem", certificate_key("0a1b")),  # store.revoke (superseded)
        item("dynamodb:UpdateItem", renewal_key("0a1b")),  # store.finish_supersession
        (
            "events:PutEvents",
            f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
            {"events:source": "kmsca.dev"},
        ),
        *NOTIFY,
    ],
    "PublishCrlFunction": [
        item("dynamodb:BatchGetItem", ca_key("root"), ca_key("issuing")),  # load_ca_signers
        ("kms:GetPublicKey", ROOT_KEY, {}),
        ("kms:GetPublicKey", ISSUING_KEY, {}),
        ("kms:Sign", ROOT_KEY, {}),  # root CRL
        ("kms:Sign", ISSUING_KEY, {}),  # issuing CRL
        item("dynamodb:UpdateItem", crl_number_key("issuing")),  # next_crl_number
        ("dynamodb:Query", f"{TABLE}/index/RevokedByCa", {}),  # list_revoked
        ("s3:PutObject", f"{INTERNAL}/crl/issuing/0000000001.crl", {}),  # archive
        *objects(("s3:GetObject", "s3:PutObject"), PUBLIC, *CRLS),  # publish: HeadObject + PutObject
        *objects(("s3:GetObject", "s3:PutObject"), PUBLIC, *PRESIGNED),  # root-signed OCSP of the issuing CA
        ("s3:ListBucket", PUBLIC, {}),
        *put_events("Certificate Issued", "Certificate Revoked"),  # handle_stream: the stream's events
    ],
    "OcspFunction": [
        item("dynamodb:BatchGetItem", ca_key("issuing")),  # load_ca_signers (issuing)
        item("dynamodb:BatchGetItem", ca_key("root")),  # root certificate (issuer match of the issuing CA)
        item("dynamodb:GetItem", certificate_key("0a1b")),  # get_certificate: the status, consistent read
        ("kms:GetPublicKey", ISSUING_KEY, {}),
        ("kms:Sign", ISSUING_KEY, {}),  # the delegated responder certificate, about once a day
        *objects(("s3:GetObject",), PUBLIC, *PRESIGNED),  # S3PresignedSource
        ("s3:ListBucket", PUBLIC, {}),  # a response not pre-signed yet: 404, not 403
    ],
    "RotateAcmFunction": [
        item("dynamodb:BatchGetItem", ca_key("root"), ca_key("issuing")),  # load_issuing_ca
        ("kms:GetPublicKey", ISSUING_KEY, {}),
        ("kms:Sign", ISSUING_KEY, {}),
        ("dynamodb:Query", f"{TABLE}/index/AcmByExpiry", {}),  # list_acm_due
        item("dynamodb:UpdateItem", certificate_key("0a1b")),  # claim/release lease, mark missing, transaction Update
        item("dynamodb:GetItem", certificate_key("0a1b")),  # get_certificate
        item("dynamodb:PutItem", certificate_key("0c0d")),  # record_rotation transaction Put
        ("acm:ImportCertificate", ACM_MANAGED, MANAGED),  # reimport into the same ARN, no tags
        ("acm:DescribeCertificate", ACM_MANAGED, MANAGED),  # served_serial (repair, ambiguous re-import)
        ("acm:ListCertificates", "*", {}),  # find_import: no resource type, so "*" (see UNSCOPABLE)
        (
            "acm:AddTagsToCertificate",
            ACM_MANAGED,
            {**MANAGED, "aws:RequestTag/kmsca:serial-number": "0c0d", "aws:TagKeys": ["kmsca:serial-number"]},
        ),  # acm.tag
        item("dynamodb:GetItem", targets_key()),  # acm_targets.resolve: the record's target
        ("sts:AssumeRole", EDGE_ROLE, {}),  # re-import through the same target's edge role
        *put_events("Certificate Rotated", "Certificate Rotation Failed"),  # publish_events
        *NOTIFY,
    ],
    "SyncKvsFunction": [
        ("dynamodb:Query", f"{TABLE}/index/RevokedByCa", {}),  # reconcile (the stream path reads no index)
        item("dynamodb:BatchGetItem", certificate_key("0a1b")),  # store.still_revoked before deleting keys
        item("dynamodb:GetItem", kvs_state_key("0123")),  # kvs_state: the CA's last write (ETag, digest)
        item("dynamodb:PutItem", kvs_state_key("0123")),
        ("cloudfront-keyvaluestore:DescribeKeyValueStore", KVS, {}),
        ("cloudfront-keyvaluestore:ListKeys", KVS, {}),
        ("cloudfront-keyvaluestore:UpdateKeys", KVS, {}),  # KVS_ARN (own store, until `local` is registered)
        item("dynamodb:GetItem", targets_key()),  # kvs_fanout: every registered target
        item("dynamodb:PutItem", kvs_state_key("prod")),  # KVSSTATE#<target>: state, or the stale marker
        ("sts:AssumeRole", EDGE_ROLE, {}),  # each target's store through its edge role
        *NOTIFY,
    ],
    "TargetsFunction": [
        item("dynamodb:GetItem", targets_key()),  # DynamoDbTargetStore.list_targets
        item("dynamodb:UpdateItem", targets_key()),  # put / delete (conditional, one map entry)
        item("dynamodb:PutItem", targets_key()),  # put: the registry item, once
        ("sts:AssumeRole", EDGE_ROLE, {}),  # registration: with, then without the external id
        ("sts:AssumeRole", EDGE_ROLE_LOCAL, {}),  # Custom::EdgeTarget (the nested edge stack)
    ],
}

# Calls a function must NOT be allowed (tags and deletion of certificates it did not create).
REFUSED: dict[str, list[Call]] = {
    "IssueFunction": [
        ("acm:AddTagsToCertificate", ACM_FOREIGN, {"aws:TagKeys": ["owner"], "aws:RequestTag/owner": "x"}),
        (
            "acm:AddTagsToCertificate",
            ACM_FOREIGN,
            {"aws:RequestTag/managed-by": "kmsca", "aws:TagKeys": ["managed-by", "owner"]},
        ),
        ("acm:ImportCertificate", ACM_FOREIGN, {}),  # a re-import over someone else's certificate (no tags)
        ("acm:DeleteCertificate", ACM_FOREIGN, {}),
        ("acm:DeleteCertificate", ACM_FOREIGN, {"aws:ResourceTag/managed-by": "someone-else"}),
        item("dynamodb:UpdateItem", certificate_key("0a1b")),
        item("dynamodb:GetItem", ca_key("issuing")),
        item("dynamodb:PutItem", targets_key()),
        ("sts:AssumeRole", f"arn:aws:iam::{WORKLOAD}:role/admin", {}),
        item("dynamodb:PutItem", policy_key()),  # callers never change their own policy
    ],
    "RotateAcmFunction": [
        ("acm:ImportCertificate", ACM_FOREIGN, {}),
        ("acm:AddTagsToCertificate", ACM_FOREIGN, {"aws:TagKeys": ["kmsca:serial-number"]}),
        ("acm:AddTagsToCertificate", ACM_MANAGED, {**MANAGED, "aws:TagKeys": ["managed-by"]}),
        ("acm:DeleteCertificate", ACM_MANAGED, MANAGED),
        ("acm:DescribeCertificate", ACM_FOREIGN, {}),
        *put_events("Certificate Revoked", "Certificate Issued"),  # the stream's, not the rotation's
        ("events:PutEvents", BUS, {"events:source": "aws.acm", "events:detail-type": "Certificate Rotated"}),
    ],
    "InventoryFunction": [
        item("dynamodb:GetItem", idempotency_key("ab12")),
        item("dynamodb:UpdateItem", certificate_key("0a1b")),
        ("dynamodb:Query", f"{TABLE}/index/RevokedByCa", {}),
    ],
    "ExpiryFunction": [
        item("dynamodb:PutItem", certificate_key("0a1b")),
        item("dynamodb:DeleteItem", certificate_key("0a1b")),
        ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default", {"events:source": "aws.acm"}),
    ],
    "RevokeFunction": [
        item("dynamodb:UpdateItem", ca_key("issuing")),
        item("dynamodb:UpdateItem", crl_number_key("issuing")),
        item("dynamodb:PutItem", policy_key()),
        item("dynamodb:UpdateItem", policy_key()),
        item("dynamodb:GetItem", idempotency_key("ab12")),
    ],
    "PublishCrlFunction": [
        ("s3:PutObject", f"{PUBLIC}/ca-bundle.pem", {}),
        ("s3:ListBucket", f"{PUBLIC}/*", {}),
        *put_events("Certificate Rotated", "Certificate Expiring"),  # another function's detail-types
        ("events:PutEvents", BUS, {"events:source": "aws.acm", "events:detail-type": "Certificate Issued"}),
        (
            "events:PutEvents",
            f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/other",
            {"events:source": "kmsca.dev", "events:detail-type": "Certificate Issued"},
        ),
    ],
    # The internet-facing responder: never the root key, never a write, never another item.
    "OcspFunction": [
        ("kms:Sign", ROOT_KEY, {}),
        ("s3:PutObject", f"{PUBLIC}/ocsp/root-signed/0a1b.sha1.der", {}),
        ("s3:GetObject", f"{PUBLIC}/issuing.crl", {}),
        item("dynamodb:PutItem", certificate_key("0a1b")),
        item("dynamodb:GetItem", idempotency_key("ab12")),
    ],
    "SyncKvsFunction": [
        item("dynamodb:PutItem", certificate_key("0a1b")),
        item("dynamodb:GetItem", ca_key("issuing")),
        item("dynamodb:PutItem", targets_key()),  # reads the registry, never writes it
        item("dynamodb:UpdateItem", targets_key()),
        ("sts:AssumeRole", f"arn:aws:iam::{WORKLOAD}:role/admin", {}),
    ],
    "TargetsFunction": [
        ("sts:AssumeRole", f"arn:aws:iam::{WORKLOAD}:role/admin", {}),
        ("sts:AssumeRole", f"arn:aws:iam::{WORKLOAD}:role/kmsca-prod-edge-us-east-1", {}),  # another CA's
        ("sts:AssumeRole", f"arn:aws:iam::{WORKLOAD}:role/other-kmsca-dev-edge-x", {}),
        item("dynamodb:GetItem", certificate_key("0a1b")),
        item("dynamodb:PutItem", kvs_state_key("0123")),
        ("cloudfront-keyvaluestore:UpdateKeys", KVS, {}),
    ],
}


# A small evaluator for the template's statements --------------------------------------------


def resolve(value: Any) -> Any:
    return template_symbols.resolve(value, PSEUDO, TEMPLATE)


def statements(function: str) -> list[dict[str, Any]]:
    """The inline statements of a function, and those of AWS::IAM::Policy resources attached to its
    SAM-generated role; a conditional policy counts with its non-empty branch."""
    found = []
    for policy in TEMPLATE["Resources"][function]["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            policy = next(branch for branch in policy["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"})
        found.extend(resolve(policy["Statement"]))
    for resource in TEMPLATE["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": f"{function}Role"} in resource["Properties"]["Roles"]:
            found.extend(resolve(resource["Properties"]["PolicyDocument"]["Statement"]))
    return found


def statement_allows(statement: dict[str, Any], action: str, resource: str, context: dict[str, Any]) -> bool:
    """Whether this one statement allows the call, by the sandbox's IAM evaluator (utils/sandbox/iam_policy.py)."""
    values = {key: tuple(str(v) for v in as_list(value)) for key, value in context.items()}
    return evaluate([{"Statement": [statement]}], RequestContext(action, resource, values)).allowed


def allowed(function: str, action: str, resource: str, context: dict[str, Any]) -> bool:
    return any(statement_allows(s, action, resource, context) for s in statements(function))


# Tests ----------------------------------------------------------------------------------------


def test_every_function_has_a_table() -> None:
    functions = {k for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == set(NEEDS)


@pytest.mark.parametrize(
    ("function", "needed"),
    [(f, c) for f, calls in NEEDS.items() for c in calls],
    ids=lambda v: v if isinstance(v, str) else f"{v[0]} {v[1]}",
)
def test_each_call_the_code_makes_is_allowed(function: str, needed: Call) -> None:
    action, resource, context = needed
    assert allowed(function, action, resource, context), f"{function} may not {action} on {resource} {context}"


@pytest.mark.parametrize("function", sorted(NEEDS))
def test_every_action_of_every_statement_is_used_by_the_code(function: str) -> None:
    for statement in statements(function):
        for action in as_list(statement["Action"]):
            assert any(
                fnmatchcase(needed[0], action) and statement_allows(statement, *needed) for needed in NEEDS[function]
            ), f"{function}: statement {statement.get('Sid')} allows {action}, which the code never calls there"


@pytest.mark.parametrize(
    ("function", "refused"),
    [(f, c) for f, calls in REFUSED.items() for c in calls],
    ids=lambda v: v if isinstance(v, str) else f"{v[0]} {v[1]}",
)
def test_calls_outside_the_need_are_refused(function: str, refused: Call) -> None:
    action, resource, context = refused
    assert not allowed(function, action, resource, context), f"{function} may {action} on {resource} {context}"


KEY_ACTIONS = ("kms:Sign", "kms:GetPublicKey", "kms:Verify", "kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt")


@pytest.mark.parametrize("function", sorted(NEEDS))
@pytest.mark.parametrize("key", [ROOT_KEY, ISSUING_KEY, TOPIC_KEY])
def test_key_use_is_exactly_the_need(function: str, key: str) -> None:
    needed = {(a, r) for a, r, _ in NEEDS[function] if r == key}
    for action in KEY_ACTIONS:
        context = VIA_SNS if key == TOPIC_KEY else {}
        assert allowed(function, action, key, context) == ((action, key) in needed), (function, action, key)


def test_the_issue_function_cannot_sign_with_the_root_key() -> None:
    assert not allowed("IssueFunction", "kms:Sign", ROOT_KEY, {})


def test_the_ocsp_responder_never_holds_root_signing_rights() -> None:
    assert not allowed("OcspFunction", "kms:Sign", ROOT_KEY, {})
    assert not allowed("OcspFunction", "kms:GetPublicKey", ROOT_KEY, {})


def test_every_function_that_publishes_may_list_the_public_bucket_not_its_objects() -> None:
    publishers = {
        f for f, calls in NEEDS.items() if any(a == "s3:PutObject" and r.startswith(PUBLIC) for a, r, _ in calls)
    }
    assert publishers == {"BootstrapFunction", "PublishCrlFunction"}  # OcspFunction only reads
    for function in publishers:
        grants = [s for s in statements(function) if "s3:ListBucket" in as_list(s["Action"])]
        assert grants and all(as_list(s["Resource"]) == [PUBLIC] for s in grants), grants


# Operator policies: what the CLIs call (utils/certcli/aws.py, bundle.py) ---------------------


def managed_policy_allows(policy: str, action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
    document = resolve(TEMPLATE["Resources"][policy]["Properties"]["PolicyDocument"])
    return any(statement_allows(s, action, resource, context or {}) for s in document["Statement"])


VIA_URL = {"lambda:InvokedViaFunctionUrl": "true"}  # Lambda sets it on the Invoke behind a function URL
IAM_URL = {"lambda:FunctionUrlAuthType": "AWS_IAM"}

CLI_CALLS: dict[str, list[Call]] = {
    "RequesterPolicy": [
        ("cloudformation:DescribeStacks", PSEUDO["AWS::StackId"], {}),  # stack_outputs
        ("lambda:InvokeFunctionUrl", "arn:aws:IssueFunction", IAM_URL),  # function_url.call (SigV4)
        ("lambda:InvokeFunction", "arn:aws:IssueFunction", VIA_URL),  # needed too since October 2025
        ("s3:GetObject", f"{PUBLIC}/ca-bundle.pem", {}),  # download_ca_bundle (CaBundleS3Uri)
    ],
    "RevokerPolicy": [
        ("cloudformation:DescribeStacks", PSEUDO["AWS::StackId"], {}),
        ("lambda:InvokeFunctionUrl", "arn:aws:RevokeFunction", IAM_URL),
        ("lambda:InvokeFunction", "arn:aws:RevokeFunction", VIA_URL),
    ],
    "ReaderPolicy": [
        ("cloudformation:DescribeStacks", PSEUDO["AWS::StackId"], {}),
        ("lambda:InvokeFunction", "arn:aws:InventoryFunction", {}),
    ],
    "PolicyAdminPolicy": [
        ("cloudformation:DescribeStacks", PSEUDO["AWS::StackId"], {}),  # the table name (CaTableName)
        item("dynamodb:GetItem", policy_key()),  # issuance-policy.py get / put (the revision read)
        item("dynamodb:PutItem", policy_key()),  # put, conditional on that revision
    ],
    "TargetAdminPolicy": [  # utils/edge-targets.py
        ("cloudformation:DescribeStacks", PSEUDO["AWS::StackId"], {}),
        ("lambda:InvokeFunction", "arn:aws:TargetsFunction", {}),
    ],
}
# The operators' direct Invoke of the issue and revoke functions is the administrators' path now.
CLI_REFUSED: dict[str, list[Call]] = {
    "RequesterPolicy": [
        ("lambda:InvokeFunction", "arn:aws:IssueFunction", {}),
        ("lambda:InvokeFunctionUrl", "arn:aws:IssueFunction", {"lambda:FunctionUrlAuthType": "NONE"}),
        ("lambda:InvokeFunctionUrl", "arn:aws:RevokeFunction", IAM_URL),
    ],
    "RevokerPolicy": [
        ("lambda:InvokeFunction", "arn:aws:RevokeFunction", {}),
        ("lambda:InvokeFunctionUrl", "arn:aws:IssueFunction", IAM_URL),
    ],
    "PolicyAdminPolicy": [
        item("dynamodb:GetItem", certificate_key("0a1b")),
        item("dynamodb:PutItem", certificate_key("0a1b")),
        ("lambda:InvokeFunction", "arn:aws:IssueFunction", {}),
    ],
}


@pytest.mark.parametrize("policy", sorted(CLI_CALLS))
def test_operator_policies_allow_what_the_clis_call_and_nothing_else(policy: str) -> None:
    resource = TEMPLATE["Resources"][policy]
    assert resource["Type"] == "AWS::IAM::ManagedPolicy"
    for action, target, context in CLI_CALLS[policy]:
        assert managed_policy_allows(policy, action, target, context), (policy, action, target)
    document = resolve(resource["Properties"]["PolicyDocument"])
    for statement in document["Statement"]:
        assert any(statement_allows(statement, a, r, c) for a, r, c in CLI_CALLS[policy]), statement
        assert "*" not in as_list(statement["Resource"])
    for other in ("arn:aws:IssueFunction", "arn:aws:RevokeFunction", "arn:aws:InventoryFunction", "arn:aws:TargetsFunction"):
        if all(target != other for _, target, _ in CLI_CALLS[policy]):
            assert not managed_policy_allows(policy, "lambda:InvokeFunction", other, VIA_URL), (policy, other)
    for action, target, context in CLI_REFUSED.get(policy, []):
        assert not managed_policy_allows(policy, action, target, context), (policy, action, target, context)


CALLER_PERMISSIONS = [
    f"{function}Function{kind}Caller{who}"
    for function in ("Issue", "Revoke")
    for kind in ("Url", "ViaUrl")
    for who in ("Account1", "Account2", "Account3", "Organization")
]


@pytest.mark.parametrize("logical_id", CALLER_PERMISSIONS)
def test_cross_account_callers_get_the_function_url_only(logical_id: str) -> None:
    resource = TEMPLATE["Resources"][logical_id]
    props = resource["Properties"]
    assert resource["Type"] == "AWS::Lambda::Permission" and resource["Condition"].startswith("HasCaller")
    if "ViaUrl" in logical_id:  # lambda:InvokeFunction only as the function URL's own invoke
        assert props["Action"] == "lambda:InvokeFunction" and props["InvokedViaFunctionUrl"] is True
    else:
        assert props["Action"] == "lambda:InvokeFunctionUrl" and props["FunctionUrlAuthType"] == "AWS_IAM"
    if logical_id.endswith("Organization"):
        assert props["Principal"] == "*" and props["PrincipalOrgID"] == {"Ref": "CallerOrganizationId"}
    else:
        assert "PrincipalOrgID" not in props and "CallerAccountIds" in str(props["Principal"])


def test_the_issue_and_revoke_functions_have_iam_function_urls_in_the_outputs() -> None:
    for function in ("IssueFunction", "RevokeFunction"):
        assert TEMPLATE["Resources"][function]["Properties"]["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"}
        assert TEMPLATE["Outputs"][f"{function}Url"]["Value"] == {"Fn::GetAtt": [f"{function}Url", "FunctionUrl"]}


def test_operator_policies_are_outputs() -> None:
    outputs = TEMPLATE["Outputs"]
    assert outputs["RequesterPolicyArn"]["Value"] == {"Ref": "RequesterPolicy"}
    assert outputs["RevokerPolicyArn"]["Value"] == {"Ref": "RevokerPolicy"}
    assert outputs["ReaderPolicyArn"]["Value"] == {"Ref": "ReaderPolicy"}
    assert outputs["TargetAdminPolicyArn"]["Value"] == {"Ref": "TargetAdminPolicy"}
    assert outputs["PolicyAdminPolicyArn"]["Value"] == {"Ref": "PolicyAdminPolicy"}
