"""Enforce the template's IAM policies on every moto request of the sandbox.

moto's own check (``moto/iam/access_control.py``) passes resource ``"*"`` for most
services, turns an Allow whose Condition is unmet into a deny and knows no service
condition keys. :func:`patch_moto_iam` replaces the authorisation step of
``ActionAuthenticatorMixin._authenticate_and_authorize_action`` (the one hook both
``BaseResponse.call_action`` and moto's S3 handlers call): moto still authenticates
the caller (access key and session token; not the signature, see the hook), then :class:`IamEnforcer` evaluates the
principal's identity policies (:mod:`utils.sandbox.iam_policy`) against the contexts
of :func:`utils.sandbox.iam_actions.request_contexts`. Enforcement depends on
``enforcer.enabled`` only (moto's ``INITIAL_NO_AUTH_ACTION_COUNT`` counter is ignored).

Services whose moto responses go through the hook (checked by
``tests/sandbox/test_sandbox_iam_patch.py``): KMS, DynamoDB, DynamoDB Streams, S3, STS, SNS,
SQS, ACM, CloudFormation, EventBridge, CloudWatch, Lambda (control plane; for
``Invoke`` moto's parameters lack ``FunctionName`` unless the sandbox front serves it)
and CloudFront (moto implements no trust store operations, so ``GetTrustStore`` /
``UpdateTrustStore`` never reach moto's backend). The CloudFront KeyValueStore data
plane is not served by moto at all. The sandbox's own HTTP front (Lambda Invoke, KVS)
calls :meth:`IamEnforcer.authorize` with :func:`request_contexts` and renders
:func:`deny_response`.

**Accounts.** moto keeps accounts apart by the caller's access key (its IAM backend): the
enforcer resolves the caller in its own account. A request naming a resource ARN of another
account is refused (``AccessDenied``): the services the sandbox serves that way (KMS,
DynamoDB, ACM, KVS, SNS, SQS, ...) allow cross-account use only through resource-based
policies, which the sandbox does not create. ``sts:AssumeRole`` is the exception: the
role's trust policy is evaluated (:func:`utils.sandbox.iam_policy.evaluate_trust`) and,
cross-account, the caller's identity policy must allow it too; in the role's own account
a trust policy naming the caller's ARN suffices (IAM User Guide, "Cross-account policy
evaluation logic").

Otherwise only identity-based policies are evaluated. AWS also evaluates resource-based
policies; the template's TLS-only bucket policy (deny when ``aws:SecureTransport`` is
false) is not modelled because the sandbox creates no bucket policies and speaks plain
http, whose contexts carry ``aws:SecureTransport = "false"``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from moto.acm.models import acm_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError, _RESTError
from moto.iam.access_control import CreateAccessKeyFailure, S3IAMRequest, create_access_key
from moto.iam.models import Policy

from .iam_actions import UnknownOperation, request_contexts
from .iam_policy import RequestContext, evaluate, evaluate_trust

__all__ = [
    "AccessDenied",
    "IamEnforcer",
    "InvalidCredentials",
    "UnknownOperation",
    "deny_response",
    "patch_moto_iam",
    "request_contexts",
    "unpatch_moto_iam",
]

_ORIGINALS: dict[str, Callable[..., Any]] = {}
#: Services that answer errors in a JSON body with ``__type`` (json / rest-json protocols).
_JSON_SERVICES = {"kms", "dynamodb", "acm", "events", "lambda", "cloudfront-keyvaluestore", "sqs", "logs"}
#: Services whose AccessDenied error has another code (API references' error lists).
_DENY_CODES = {"sns": "AuthorizationError"}
#: moto's (query-style) authentication error codes -> the JSON services' codes.
_JSON_CODES = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}


class AccessDenied(Exception):
    """The enforcer refused a request; ``message`` is AWS's wording."""

    code = "AccessDenied"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidCredentials(AccessDenied):
    """The access key or session token is unknown to moto's IAM and STS backends."""

    code = "InvalidClientTokenId"


@dataclasses.dataclass(frozen=True)
class _Principal:
    arn: str  # the caller: user ARN or assumed-role session ARN
    principal_arn: str  # aws:PrincipalArn: the user or the role
    account: str
    policies: list[Mapping[str, Any]]


def _document(policy: Any) -> Mapping[str, Any]:
    """moto keeps inline policies as JSON text (users: in a dict) and managed ones as Policy."""
    if isinstance(policy, Policy):
        policy = next(v.document for v in policy.versions if v.version_id == policy.default_version_id)
    if isinstance(policy, Mapping) and "policy_document" in policy:
        policy = policy["policy_document"]
    return json.loads(policy) if isinstance(policy, str) else policy


class IamEnforcer:
    """Decide moto requests from the caller's identity policies (and role trust policies).

    ``enabled`` is False while the sandbox provisions resources and True afterwards.
    ``account_id`` is the account assumed for credentials moto does not know (moto's default).
    """

    def __init__(self, account_id: str = "123456789012", *, enabled: bool = False) -> None:
        self.account_id = account_id
        self.enabled = enabled

    def principal(self, access_key_id: str, session_token: str | None) -> _Principal:
        """Resolve an IAM user key or an assumed-role session in its own account;
        :class:`InvalidCredentials` if unknown."""
        headers = {"X-Amz-Security-Token": session_token} if session_token else {}
        account = _account_of(access_key_id, self.account_id)
        try:
            key = create_access_key(account, "aws", access_key_id, headers)
        except CreateAccessKeyFailure as error:
            reason = f"The security token included in the request is invalid ({error.reason})."
            raise InvalidCredentials(reason) from None
        arn = key.arn
        principal_arn = arn
        if ":assumed-role/" in arn:
            role_name = arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
            principal_arn = f"arn:aws:iam::{account}:role/{role_name}"
        return _Principal(arn, principal_arn, account, [_document(p) for p in key.collect_policies()])

    def account_of(self, access_key_id: str) -> str:
        """The account an access key belongs to (moto's default account when unknown)."""
        return _account_of(access_key_id, self.account_id)

    def authorize(self, access_key_id: str, session_token: str | None, contexts: list[RequestContext]) -> None:
        """Raise :class:`AccessDenied` unless every context is allowed (no-op when disabled)."""
        if not self.enabled:
            return
        caller = self.principal(access_key_id, session_token)
        for context in contexts:
            keys = {
                **context.condition_values,
                "aws:PrincipalArn": (caller.principal_arn,),
                "aws:PrincipalAccount": (caller.account,),
                **_org_keys(caller.account),
            }
            context = dataclasses.replace(context, condition_values=keys)
            decision = evaluate(caller.policies, context)
            if context.action.lower() == "sts:assumerole":
                reason = _assume_role_refusal(caller, context, decision.allowed)
                if reason is None and not decision.explicit_deny:
                    continue
                reason = reason or "with an explicit deny in an identity-based policy"
            elif decision.allowed and _foreign_account(context.resource, caller.account):
                reason = "because no resource-based policy allows access from another account"
            elif decision.allowed:
                continue
            else:
                reason = (
                    "with an explicit deny in an identity-based policy"
                    if decision.explicit_deny
                    else f"because no identity-based policy allows the {context.action} action"
                )
            raise AccessDenied(
                f"User: {caller.arn} is not authorized to perform: {context.action} "
                f"on resource: {context.resource} {reason}"
            )

    def authorize_headers(self, headers: Mapping[str, str], action: str, resource: str) -> tuple[str, str] | None:
        """For the sandbox's own HTTP answers (Lambda Invoke, KVS): None when the request's
        credentials (``Authorization``, ``X-Amz-Security-Token`` headers) may do ``action`` on
        ``resource``; else AWS's (error code, message): ``UnrecognizedClientException`` for unknown
        credentials, ``AccessDeniedException`` when refused. None when disabled."""
        if not self.enabled:
            return None
        authorization = headers.get("Authorization", "")
        key = authorization.split("Credential=", 1)[-1].split("/", 1)[0] if "Credential=" in authorization else ""
        context = RequestContext(action=action, resource=resource, condition_values={})
        try:
            self.authorize(key, headers.get("X-Amz-Security-Token"), [context])
        except InvalidCredentials as exc:
            return "UnrecognizedClientException", exc.message
        except AccessDenied as exc:
            return "AccessDeniedException", exc.message
        return None

    def allows(self, access_key_id: str, session_token: str | None, action: str, resource: str) -> bool:
        """Whether these credentials may do ``action`` on ``resource`` (True when disabled)."""
        try:
            self.authorize(access_key_id, session_token, [RequestContext(action, resource, {})])
        except AccessDenied:
            return False
        return True


def _account_of(access_key_id: str, default: str) -> str:
    from moto.iam.models import get_account_id_from

    account = get_account_id_from(access_key_id)
    return account if account != DEFAULT_ACCOUNT_ID else default


def _foreign_account(resource: str, account: str) -> bool:
    """Whether ``resource`` is an ARN naming another account (S3 ARNs name none)."""
    parts = resource.split(":", 5)
    return len(parts) == 6 and parts[0] == "arn" and bool(re.fullmatch(r"[0-9]{12}", parts[4])) and parts[4] != account


def _org_keys(account: str) -> dict[str, tuple[str, ...]]:
    """``aws:PrincipalOrgID`` when moto's Organizations knows the account (else absent, as AWS)."""
    try:
        from moto.organizations.models import organizations_backends
    except ImportError:  # pragma: no cover
        return {}
    for backends in list(organizations_backends.values()):
        for backend in list(backends.values()) if isinstance(backends, Mapping) else [backends]:
            org = getattr(backend, "org", None)
            if org is not None and any(a.id == account for a in getattr(backend, "accounts", [])):
                return {"aws:PrincipalOrgID": (org.id,)}
            if org is not None and getattr(org, "master_account_id", None) == account:
                return {"aws:PrincipalOrgID": (org.id,)}
    return {}


def _assume_role_refusal(caller: _Principal, context: RequestContext, identity_allows: bool) -> str | None:
    """Why ``caller`` may not assume the role ``context.resource``; None when it may."""
    from moto.iam.models import iam_backends

    parts = context.resource.split(":", 5)
    role_account = parts[4] if len(parts) == 6 else ""
    role_name = parts[5].rsplit("/", 1)[-1] if len(parts) == 6 else ""
    try:
        role = iam_backends[role_account]["aws"].get_role(role_name)
    except Exception:
        return "because the role does not exist"
    if role.arn != context.resource:
        return "because the role does not exist"
    trust = evaluate_trust(
        json.loads(role.assume_role_policy_document),
        caller_arn=caller.arn,
        principal_arn=caller.principal_arn,
        account=caller.account,
        context=context,
    )
    if not trust.allowed:
        return "because the role's trust policy does not allow it"
    if identity_allows or (role_account == caller.account and trust.names_principal):
        return None
    return "because no identity-based policy allows the sts:AssumeRole action"


def deny_response(service: str, message: str, code: str = "AccessDenied") -> tuple[int, dict[str, str], str]:
    """The (status, headers, body) AWS answers for a refused call of ``service``.

    JSON services: ``AccessDeniedException`` (HTTP 400 for json-1.0/1.1 services such
    as DynamoDB, KMS, ACM; 403 for rest-json ones: Lambda, KeyValueStore). Query/XML
    services: ``AccessDenied`` 403 (SNS: ``AuthorizationError``); S3 its XML error.
    """
    if service in _JSON_SERVICES:
        error_type = _JSON_CODES.get(code, code)
        status = 403 if service in ("lambda", "cloudfront-keyvaluestore") else 400
        body = json.dumps({"__type": error_type, "message": message, "Message": message})
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": error_type}, body
    code = _DENY_CODES.get(service, code) if code == "AccessDenied" else code
    if service == "s3":
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            "</Error><RequestId>sandbox</RequestId></ErrorResponse>"
        )
    return 403, {"Content-Type": "text/xml"}, body


class _DeniedError(_RESTError):
    """A moto HTTPException carrying :func:`deny_response`'s rendering."""

    def __init__(self, service: str, message: str, code: str) -> None:
        status, headers, body = deny_response(service, message, code)
        super().__init__(code, message)
        self.code = status
        self.description = body
        self.content_type = headers["Content-Type"]
        self._deny_headers = headers
        self._deny_body = body

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return list(self._deny_headers.items())

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return self._deny_body


def _acm_tags(account: str, region: str) -> Callable[[str], Mapping[str, str]]:
    def tags(arn: str) -> Mapping[str, str]:
        try:
            tags = acm_backends[account][region].get_certificate(arn).tags
            return {key: value or "" for key, value in tags.items()}
        except Exception:  # an unknown certificate has no tags; ACM answers the NotFound itself
            return {}

    return tags


def _params(response: Any, is_s3: bool, resource: str) -> tuple[str, Mapping[str, Any]]:
    """The operation name and its parameters, as moto parsed them."""
    if is_s3:
        query = {k: v[0] for k, v in response.querystring.items()}
        bucket, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
        params = {"Bucket": bucket, "Key": key, "VersionId": query.get("versionId"), "Prefix": query.get("prefix")}
        return str(response.data.get("Action")), {k: v for k, v in params.items() if v}
    operation = response._get_action()
    if getattr(response, "automated_parameter_parsing", False) and getattr(response, "params", None):
        return operation, response.params
    body = response.body.decode() if isinstance(response.body, bytes) else response.body
    if body and body.lstrip().startswith("{"):
        return operation, json.loads(body)
    return operation, {k: v[0] for k, v in response.querystring.items()}


def _hook(enforcer: IamEnforcer) -> Callable[..., None]:
    original = _ORIGINALS["_authenticate_and_authorize_action"]

    def authenticate_and_authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if not enforcer.enabled:
            return
        credential = self.headers.get("Authorization", "").partition("Credential=")[2].partition(",")[0]
        key_id, _, region, service, *_ = (credential.split("/") + [""] * 5)[:5]
        if not service:
            raise _DeniedError("s3" if iam_request_cls is S3IAMRequest else "sts", "Missing signature", "AccessDenied")
        query = urlparse(self.uri).query
        try:  # moto authenticates the access key and session token (unknown ones are refused)
            iam_request_cls(
                account_id=self.current_account,
                method=self.method,
                path=self.raw_path + (f"?{query}" if query else ""),
                data=self.data,
                body=self.raw_body,
                headers=self.headers,
                action=self._get_action(),
            )
            # The signature is not re-checked: moto recomputes some REST requests' canonical form
            # differently from botocore (CloudFront's GET .../key-value-store/{name} fails), and
            # the sandbox's clients are botocore, which signs correctly.
        except _RESTError as error:  # moto answers these in XML, even for JSON services
            if iam_request_cls is S3IAMRequest or service not in _JSON_SERVICES:
                raise
            raise _DeniedError(service, error.message, error.error_type) from error
        operation, params = _params(self, iam_request_cls is S3IAMRequest, resource)
        try:
            contexts = request_contexts(
                service,
                operation,
                params,
                region=region,
                account_id=self.current_account,
                resource_tags=_acm_tags(self.current_account, region),
            )
            enforcer.authorize(key_id, self.headers.get("X-Amz-Security-Token"), contexts)
        except AccessDenied as denied:
            raise _DeniedError(service, denied.message, denied.code) from denied
        except (UnknownOperation, KeyError) as unknown:
            gap = JsonRESTError("SandboxUnknownOperation", f"iam_actions has no rule for {service}:{unknown}")
            gap.code = 501
            raise gap from unknown

    authenticate_and_authorize.__wrapped__ = original  # type: ignore[attr-defined]
    return authenticate_and_authorize


def patch_moto_iam(enforcer: IamEnforcer) -> None:
    """Route moto's authorisation hook to ``enforcer`` (idempotent; a second call swaps the enforcer)."""
    hook = "_authenticate_and_authorize_action"
    _ORIGINALS.setdefault(hook, getattr(ActionAuthenticatorMixin, hook))
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _hook(enforcer)  # type: ignore[method-assign]


def unpatch_moto_iam() -> None:
    """Restore moto's own hook (idempotent)."""
    original = _ORIGINALS.pop("_authenticate_and_authorize_action", None)
    if original is not None:
        ActionAuthenticatorMixin._authenticate_and_authorize_action = original  # type: ignore[method-assign]
