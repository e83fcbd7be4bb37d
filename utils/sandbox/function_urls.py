"""Lambda function URLs with ``AuthType: AWS_IAM`` in the sandbox, as Lambda serves them.

A template's ``AWS::Lambda::Url`` (or SAM's ``FunctionUrlConfig``, which generates
``<Function>Url``) with ``AuthType: AWS_IAM`` is served at
``http://127.0.0.1:<port>/__lambda_url__/<url-id>/`` (its ``FunctionUrl`` attribute, so the stack
outputs give it; AWS's is ``https://<url-id>.lambda-url.<region>.on.aws/``: the address is the one
departure). A request is answered as Lambda does (Lambda Developer Guide, "Control access to Lambda
function URLs", "Invoking Lambda function URLs"):

1. **Authentication**: the SigV4 signature (service ``lambda``, the stack's region, at most
   15 minutes old) is recomputed with botocore's ``SigV4Auth`` from the secret moto keeps for the
   access key (an IAM user's key in ``iam_backends[account].access_keys``, an STS session's in
   ``sts_backends[account].assumed_roles``; the account is found with moto's
   ``get_account_id_from``). Missing, unknown or wrong: **403** ``{"Message":"Forbidden"}``.
2. **Authorisation** of ``lambda:InvokeFunctionUrl`` (context ``lambda:FunctionUrlAuthType`` =
   ``AWS_IAM``) and ``lambda:InvokeFunction`` (context ``lambda:InvokedViaFunctionUrl`` = true: URLs
   created since October 2025 need both) on the function ARN: a caller of the function's account
   needs an identity policy **or** a resource-based permission (the template's
   ``AWS::Lambda::Permission`` resources) allowing it; a caller of another account needs **both**.
   No explicit deny may apply. Refused: **403** ``{"Message":"Forbidden"}``.
3. **Invocation** with a payload format 2.0 event whose ``requestContext.authorizer.iam`` carries
   ``accessKey``, ``accountId``, ``callerId``, ``userArn``, ``userId``, ``principalOrgId`` (None
   outside AWS Organizations), ``cognitoIdentity`` (None); the handler's ``statusCode``, ``headers``
   and ``body`` (base64 when ``isBase64Encoded``) are the HTTP answer; a function error is **502**.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .context import StackContext
from .iam_patch import _document, _org_keys
from .iam_policy import RequestContext, evaluate

__all__ = ["FUNCTION_URL_PATH", "CallerIdentity", "serve_function_url", "verify_signature"]

FUNCTION_URL_PATH = "/__lambda_url__/"
MAX_SKEW_SECONDS = 15 * 60
_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_ASSUMED = re.compile(r"arn:aws:sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.+)")
FORBIDDEN = (403, {"content-type": "application/json"}, b'{"Message":"Forbidden"}')

Answer = tuple[int, dict[str, str], bytes]


class CallerIdentity:
    """A verified caller: ``arn`` (user or assumed-role session), ``account``, ``principal_arn``
    (user or role), ``user_id``/``caller_id`` (AIDA... or AROA...:session), ``org_id``, ``policies``."""

    def __init__(self, access_key: Any, account: str, access_key_id: str) -> None:
        self.access_key_id = access_key_id
        self.account = account
        self.arn: str = access_key.arn
        self.policies = [_document(p) for p in access_key.collect_policies()]
        match = _ASSUMED.fullmatch(self.arn)
        self.principal_arn = f"arn:aws:iam::{account}:role/{match['role']}" if match else self.arn
        self.caller_id = _unique_id(access_key, account, match)
        self.org_id = _organization_of(account)


def _unique_id(access_key: Any, account: str, match: re.Match[str] | None) -> str:
    try:
        backend = access_key.backend
        if match:
            return f"{backend.get_role(match['role']).id}:{match['session']}"
        return str(backend.get_user(access_key._owner_user_name).id)
    except Exception:  # a role deleted since: the id is informational only
        return f"{account}:{match['session'] if match else 'user'}"


def _organization_of(account: str) -> str | None:
    """The AWS Organizations id of ``account`` in moto's Organizations (None outside one)."""
    return next(iter(_org_keys(account).get("aws:PrincipalOrgID", ())), None)


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


def verify_signature(
    method: str, url: str, headers: Mapping[str, str], body: bytes, region: str, now: float | None = None
) -> CallerIdentity | None:
    """The caller of a SigV4-signed request, or None when the signature is missing, malformed,
    signed for another service or region, too old or new, by an unknown key, or wrong."""
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key
    from moto.iam.models import get_account_id_from

    match = _AUTH_RE.match(_header(headers, "authorization"))
    amz_date = _header(headers, "x-amz-date")
    if match is None or match["service"] != "lambda" or match["region"] != region or not amz_date:
        return None
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
    skew = abs((time.time() if now is None else now) - signed_at)
    if skew > MAX_SKEW_SECONDS or not amz_date.startswith(match["date"]):
        return None
    key_id, token = match["key"], _header(headers, "x-amz-security-token")
    account = get_account_id_from(key_id)
    try:
        access_key = create_access_key(account, "aws", key_id, {"X-Amz-Security-Token": token} if token else {})
    except CreateAccessKeyFailure:
        return None
    credentials = access_key.create_credentials()
    signed = match["signed"].split(";")
    request = AWSRequest(
        method=method, url=url, data=body, headers={k: v for k, v in headers.items() if k.lower() in signed}
    )
    if len(request.headers) != len(signed):
        return None  # a signed header is absent
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(credentials.access_key, credentials.secret_key, token or None), "lambda", region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if not _constant_time_equal(expected, match["signature"]):
        return None
    return CallerIdentity(access_key, account, key_id)


def _constant_time_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


# -- authorisation ------------------------------------------------------------------------------------


def resource_policy(sandbox: StackContext, function_name: str, function_arn: str) -> list[dict[str, Any]]:
    """The function's resource-based policy: one statement (with ``Principal``) per template
    ``AWS::Lambda::Permission`` of the function (FunctionUrlAuthType, PrincipalOrgID and
    InvokedViaFunctionUrl become their condition keys, as Lambda's AddPermission writes them)."""
    statements = []
    for resource in sandbox.template.of_type("AWS::Lambda::Permission"):
        props = sandbox.resolve(resource.properties)
        if str(props.get("FunctionName")) not in (function_name, function_arn):
            continue
        condition: dict[str, dict[str, str]] = {}
        if props.get("FunctionUrlAuthType"):
            condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = str(props["FunctionUrlAuthType"])
        if props.get("PrincipalOrgID"):
            condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = str(props["PrincipalOrgID"])
        if props.get("InvokedViaFunctionUrl") in (True, "true"):
            condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
        statements.append(
            {
                "Sid": resource.logical_id,
                "Effect": "Allow",
                "Principal": str(props["Principal"]),
                "Action": str(props["Action"]),
                "Resource": function_arn,
                **({"Condition": condition} if condition else {}),
            }
        )
    return statements


def _principal_matches(principal: str, caller: CallerIdentity) -> bool:
    if principal == "*":
        return True
    if re.fullmatch(r"\d{12}", principal):
        return caller.account == principal
    if principal.endswith(":root"):
        return caller.account == principal.split(":")[4]
    return principal in (caller.arn, caller.principal_arn)


def authorize(
    caller: CallerIdentity, function_account: str, function_arn: str, statements: list[dict[str, Any]]
) -> str | None:
    """None when ``caller`` may invoke the function through its AWS_IAM URL, else why not."""
    values: dict[str, tuple[str, ...]] = {
        "aws:PrincipalArn": (caller.principal_arn,),
        "aws:PrincipalAccount": (caller.account,),
        **({"aws:PrincipalOrgID": (caller.org_id,)} if caller.org_id else {}),
    }
    needs = (
        ("lambda:InvokeFunctionUrl", {"lambda:FunctionUrlAuthType": ("AWS_IAM",)}),
        ("lambda:InvokeFunction", {"lambda:InvokedViaFunctionUrl": ("true",)}),
    )
    resource_statements = [
        {k: v for k, v in s.items() if k != "Principal"}
        for s in statements
        if _principal_matches(s["Principal"], caller)
    ]
    for action, extra in needs:
        context = RequestContext(action=action, resource=function_arn, condition_values={**values, **extra})
        identity = evaluate(caller.policies, context)
        granted = evaluate([{"Statement": resource_statements}], context) if resource_statements else None
        if identity.explicit_deny or (granted is not None and granted.explicit_deny):
            return f"{action}: explicit deny"
        by_resource = granted is not None and granted.allowed
        same_account = caller.account == function_account
        allowed = (identity.allowed or by_resource) if same_account else (identity.allowed and by_resource)
        if not allowed:
            return f"{caller.arn} may not {action} on {function_arn}"
    return None


# -- the HTTP edge ------------------------------------------------------------------------------------------


def _event(
    caller: CallerIdentity,
    url_id: str,
    host: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    account: str,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": account,
            "apiId": url_id,
            "authorizer": {
                "iam": {
                    "accessKey": caller.access_key_id,
                    "accountId": caller.account,
                    "callerId": caller.caller_id,
                    "cognitoIdentity": None,
                    "principalOrgId": caller.org_id,
                    "userArn": caller.arn,
                    "userId": caller.caller_id,
                }
            },
            "domainName": host,
            "domainPrefix": url_id,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": _header(headers, "user-agent"),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }


def serve_function_url(
    sandbox: StackContext,
    method: str,
    url: str,
    rest: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    enforce_iam: bool = True,
) -> Answer:
    """Answer one request to ``/__lambda_url__/<url-id>/<path>`` (``rest`` is after the prefix;
    ``url`` the full URL the client signed); ``enforce_iam`` False skips step 2 (the signature is
    still verified: it names the caller)."""
    url_id, _, path = rest.partition("/")
    logical_id = getattr(sandbox, "function_urls", {}).get(url_id)
    if logical_id is None:
        return 404, {"content-type": "application/json"}, b'{"Message":"Not Found"}'
    caller = verify_signature(method, url, headers, body, sandbox.region)
    if caller is None:
        return FORBIDDEN
    function = sandbox.functions[logical_id]
    if enforce_iam:
        statements = resource_policy(sandbox, function.name, function.arn)
        if authorize(caller, sandbox.account_id, function.arn, statements) is not None:
            return FORBIDDEN
    host = _header(headers, "host")
    event = _event(caller, url_id, host, method, "/" + path, query, headers, body, sandbox.account_id)
    result = sandbox.run_function(logical_id, event)
    if result.function_error:
        return 502, {"content-type": "application/json"}, b'{"Message":"Internal Server Error"}'
    answer = json.loads(result.payload or b"null")
    if not isinstance(answer, dict) or "statusCode" not in answer:  # Lambda: a bare value is a 200 JSON body
        return 200, {"content-type": "application/json"}, json.dumps(answer).encode()
    payload = answer.get("body") or ""
    data = base64.b64decode(payload) if answer.get("isBase64Encoded") else str(payload).encode()
    return int(answer["statusCode"]), {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}, data
