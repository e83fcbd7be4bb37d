"""The sandbox's HTTP front: what moto does not serve, in front of moto (WSGI middleware).

- Lambda ``Invoke`` (``POST /2015-03-31/functions/{name-or-arn}/invocations``) of the
  template's functions: authorised (``lambda:InvokeFunction`` on the function ARN, for the
  caller's credentials) and run by the function's workers;
- CloudFormation ``DescribeStacks`` of the sandbox's stack, and of its nested stacks and the
  stacks deployed into workload accounts for callers of their account
  (``cloudformation:DescribeStacks``);
- ``PUT /__sandbox__/cfn-response/{request-id}``: custom-resource responses;
- ``/__lambda_url__/{url-id}/``: the template's AWS_IAM function URLs (:mod:`.function_urls`);
- the CloudFront KeyValueStore data plane (SigV4A), authorised per operation on the store ARN
  and answered by :class:`~utils.sandbox.kvs.KvsEmulator`; ``GET /__sandbox__/kvs[/{arn}]``
  shows the stores' content (a sandbox tool, not an AWS API);
- ``POST /__sandbox__/schedules/{FunctionLogicalId}[/{EventName}]`` runs a schedule now.

**Regions.** The stack exists in one region: a Lambda or CloudFormation request signed for
another region gets what AWS answers there (the function or stack does not exist). moto keeps
every other service's resources per region by itself (ACM in us-east-1 is a region of its own).
Everything else goes to moto, which authorises it through :mod:`utils.sandbox.iam_patch`.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote
from xml.sax.saxutils import escape

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.wsgi import get_input_stream

from .context import SandboxError, StackContext
from .custom_resources import CFN_RESPONSE_PATH, PendingResponse
from .distribution import DISTRIBUTION_PATH
from .function_urls import FUNCTION_URL_PATH, serve_function_url
from .kvs import is_kvs_request, kvs_operation
from .runtime import Busy, InvocationResult, LocalFunction

__all__ = ["KVS_PATH", "SCHEDULES_PATH", "Front", "FrontTarget", "QuietRequestHandler"]

logger = logging.getLogger(__name__)

SCHEDULES_PATH = "/__sandbox__/schedules/"
KVS_PATH = "/__sandbox__/kvs"
_INVOKE_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_SCOPE_RE = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
_CONTENT_HEADERS = {"Content-Type": "CONTENT_TYPE", "Content-Length": "CONTENT_LENGTH"}


class FrontTarget(StackContext, Protocol):
    """What the front needs of the sandbox beyond :class:`StackContext`."""

    pending_responses: dict[str, PendingResponse]

    def trigger_schedule(self, logical_id: str, event_name: str | None = None) -> InvocationResult:
        """Run a schedule now."""

    def run_function_async(self, logical_id: str, event: Any) -> str:
        """Invoke in the background; the request id."""

    def describe_stacks_xml(self) -> bytes:
        """DescribeStacks response body."""

    def child_stack_xml(self, name_or_id: str, headers: dict[str, str]) -> tuple[str, bytes] | None:
        """(stack id, DescribeStacks body) of a nested or deployed stack of the caller's account."""

    def authorize(self, headers: dict[str, str], action: str, resource: str) -> tuple[str, str] | None:
        """None when the request's credentials may do ``action`` on ``resource``, else (code, message)."""


StartResponse = Callable[..., Any]


def _respond(
    start_response: StartResponse, status: str, body: bytes, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    start_response(status, [("Content-Length", str(len(body))), *headers])
    return [body]


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so moto can read it again."""
    body = get_input_stream(environ).read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _lambda_error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return _respond(
        start_response,
        status,
        body,
        [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)],
    )


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's HTTP headers, ``Title-Case`` names."""
    return {key[5:].replace("_", "-").title(): str(value) for key, value in environ.items() if key.startswith("HTTP_")}


def _query_error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    """An error of a query-protocol service (CloudFormation): ErrorResponse XML."""
    body = (
        '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode()
    return _respond(start_response, status, body, [("Content-Type", "text/xml")])


def _empty_stacks_xml() -> bytes:
    return (
        b'<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
        b"<DescribeStacksResult><Stacks/></DescribeStacksResult></DescribeStacksResponse>"
    )


class Front:
    """WSGI middleware in front of moto's DomainDispatcherApplication."""

    def __init__(self, sandbox: FrontTarget, moto_app: Callable[..., Any]) -> None:
        self.sandbox = sandbox
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        method: str = environ.get("REQUEST_METHOD", "GET")
        try:
            if path.startswith(CFN_RESPONSE_PATH) and method == "PUT":
                return self._cfn_response(environ, start_response, path[len(CFN_RESPONSE_PATH) :])
            if path.startswith(DISTRIBUTION_PATH):
                return self._distribution(environ, start_response, path[len(DISTRIBUTION_PATH) :], method)
            if path.startswith(FUNCTION_URL_PATH):
                return self._function_url(environ, start_response, method)
            if path.startswith(SCHEDULES_PATH) and method == "POST":
                return self._schedule(start_response, path[len(SCHEDULES_PATH) :])
            if (path == KVS_PATH or path.startswith(KVS_PATH + "/")) and method == "GET":
                return self._kvs_contents(environ, start_response)
            if is_kvs_request(path, environ.get("HTTP_AUTHORIZATION", "")):
                return self._kvs_data_plane(environ, start_response, method)
            scope = _SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
            match = _INVOKE_RE.match(path)
            if match and method == "POST":
                function, qualifier = self.sandbox.lookup_function(match.group("name"))
                if function is not None:
                    if scope and scope.group("region") != self.sandbox.region:
                        return _lambda_error(
                            start_response,
                            "404 Not Found",
                            "ResourceNotFoundException",
                            f"Function not found: {function.arn.replace(self.sandbox.region, scope.group('region'))}",
                        )
                    denied = self.sandbox.authorize(_headers(environ), "lambda:InvokeFunction", function.arn)
                    if denied:
                        return _lambda_error(start_response, "403 Forbidden", *denied)
                    return self._invoke(environ, start_response, function, qualifier)
                name = unquote(match.group("name"))
                arn = (
                    name
                    if name.startswith("arn:")
                    else f"arn:aws:lambda:{self.sandbox.region}:{self.sandbox.account_id}:function:{name}"
                )
                # moto runs no Lambda code: a function the stack does not have does not exist.
                return _lambda_error(
                    start_response, "404 Not Found", "ResourceNotFoundException", f"Function not found: {arn}"
                )
            if scope and scope.group("service") == "cloudformation":
                return self._cloudformation(environ, start_response, scope.group("region"))
        except Exception:
            logger.exception("sandbox front-end failed on %s %s", method, path)
            return _respond(start_response, "500 Internal Server Error", b'{"message": "sandbox error"}')
        return self.moto_app(environ, start_response)

    def _cloudformation(self, environ: dict[str, Any], start_response: StartResponse, region: str) -> Iterable[bytes]:
        """DescribeStacks of the sandbox's stack; anything else goes to moto."""
        body = _read_body(environ)
        params = parse_qs(environ.get("QUERY_STRING", "")) | parse_qs(body.decode("utf-8", "replace"))
        stack = (params.get("StackName") or [None])[0]
        if (params.get("Action") or [""])[0] != "DescribeStacks":
            return self.moto_app(environ, start_response)
        child = self.sandbox.child_stack_xml(stack, _headers(environ)) if stack else None
        if child is not None and region == self.sandbox.region:
            denied = self.sandbox.authorize(_headers(environ), "cloudformation:DescribeStacks", child[0])
            if denied:
                code = "InvalidClientTokenId" if denied[0] == "UnrecognizedClientException" else "AccessDenied"
                return _query_error(start_response, "403 Forbidden", code, denied[1])
            return _respond(start_response, "200 OK", child[1], [("Content-Type", "text/xml")])
        if stack not in (None, self.sandbox.stack_name, self.sandbox.stack_id):
            return self.moto_app(environ, start_response)
        if region != self.sandbox.region:
            if stack is None:
                return _respond(start_response, "200 OK", _empty_stacks_xml(), [("Content-Type", "text/xml")])
            return _query_error(
                start_response, "400 Bad Request", "ValidationError", f"Stack with id {stack} does not exist"
            )
        denied = self.sandbox.authorize(_headers(environ), "cloudformation:DescribeStacks", self.sandbox.stack_id)
        if denied:
            code = "InvalidClientTokenId" if denied[0] == "UnrecognizedClientException" else "AccessDenied"
            return _query_error(start_response, "403 Forbidden", code, denied[1])
        return _respond(start_response, "200 OK", self.sandbox.describe_stacks_xml(), [("Content-Type", "text/xml")])

    def _invoke(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        function: LocalFunction,
        qualifier: str | None,
    ) -> list[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        qualifier = (query.get("Qualifier") or [qualifier])[0]
        if qualifier not in (None, "$LATEST"):
            return _lambda_error(
                start_response,
                "404 Not Found",
                "ResourceNotFoundException",
                f"Function not found: {function.arn}:{qualifier} (the sandbox has only $LATEST)",
            )
        body = _read_body(environ)
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return _lambda_error(
                start_response,
                "400 Bad Request",
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}",
            )
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        if invocation_type == "DryRun":
            return _respond(start_response, "204 No Content", b"")
        if invocation_type == "Event":
            request_id = self.sandbox.run_function_async(function.logical_id, event)
            return _respond(start_response, "202 Accepted", b"", [("x-amzn-RequestId", request_id)])
        if invocation_type != "RequestResponse":
            return _lambda_error(
                start_response,
                "400 Bad Request",
                "InvalidParameterValueException",
                f"Unsupported InvocationType {invocation_type}",
            )
        try:
            result = self.sandbox.run_function(function.logical_id, event)
        except Busy as exc:
            return _lambda_error(start_response, "429 Too Many Requests", "TooManyRequestsException", str(exc))
        headers = [
            ("Content-Type", "application/json"),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("x-amzn-RequestId", result.request_id),
        ]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        return _respond(start_response, "200 OK", result.payload, headers)

    def _schedule(self, start_response: StartResponse, rest: str) -> list[bytes]:
        """``POST /__sandbox__/schedules/{FunctionLogicalId}[/{EventName}]``: run a schedule now.

        Answers like Lambda Invoke: 200 with the function's payload (``X-Amz-Function-Error``
        when it failed); 404 for an unknown function or schedule.
        """
        logical_id, _, event_name = rest.strip("/").partition("/")
        try:
            result = self.sandbox.trigger_schedule(unquote(logical_id), unquote(event_name) or None)
        except SandboxError as exc:
            return _lambda_error(start_response, "404 Not Found", "ResourceNotFoundException", str(exc))
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", result.request_id)]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        return _respond(start_response, "200 OK", result.payload, headers)

    def _kvs_contents(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """``GET /__sandbox__/kvs[/{url-encoded KvsARN}]``: what the emulated stores hold (JSON)."""
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "")))
        rest = raw.split("?", 1)[0][len(KVS_PATH) :].strip("/")
        kvs = self.sandbox.kvs
        arns = [unquote(rest)] if rest else kvs.stores()
        stores = {}
        for arn in arns:
            try:
                stores[arn] = {"ETag": kvs.etag(arn), "Items": kvs.items(arn)}
            except KeyError:
                return _lambda_error(start_response, "404 Not Found", "ResourceNotFoundException", f"no store {arn}")
        body = json.dumps(stores[arns[0]] | {"KvsARN": arns[0]} if rest else {"stores": stores}).encode()
        return _respond(start_response, "200 OK", body, [("Content-Type", "application/json")])

    def _kvs_data_plane(self, environ: dict[str, Any], start_response: StartResponse, method: str) -> list[bytes]:
        """A ``cloudfront-keyvaluestore`` request from another process: authorised, then the emulator answers."""
        body = _read_body(environ)
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "")))
        if "?" not in raw and environ.get("QUERY_STRING"):
            raw += "?" + environ["QUERY_STRING"]
        headers = _headers(environ)
        arn, operation = kvs_operation(method, raw)
        denied = self.sandbox.authorize(headers, f"cloudfront-keyvaluestore:{operation}", arn)
        if denied:
            payload = json.dumps({"Message": denied[1]}).encode()
            return _respond(
                start_response,
                "403 Forbidden",
                payload,
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", denied[0])],
            )
        status, response_headers, payload = self.sandbox.kvs.handle(method, raw, headers, body)
        reason = {200: "OK", 400: "Bad Request", 402: "Payment Required", 404: "Not Found", 409: "Conflict"}
        return _respond(
            start_response, f"{status} {reason.get(status, 'Error')}", payload, list(response_headers.items())
        )

    def _distribution(
        self, environ: dict[str, Any], start_response: StartResponse, rest: str, method: str
    ) -> list[bytes]:
        """``/__cloudfront__/{id}/{path}``: a viewer request to a distribution of the template."""
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "")))
        raw_path = raw.split("?", 1)[0]
        distribution_id, _, _ = rest.partition("/")
        distribution = getattr(self.sandbox, "distributions", {}).get(distribution_id)
        if distribution is None:
            return _respond(start_response, "404 Not Found", b"no such distribution")
        # The path as the viewer sent it (still url-encoded: an OCSP GET carries base64 with %2F).
        path = raw_path[len(DISTRIBUTION_PATH) + len(distribution_id) :] or "/"
        body = _read_body(environ)
        answer = distribution.serve(method, path, environ.get("QUERY_STRING", ""), _headers(environ), body)
        return _respond(start_response, answer.status, answer.body, answer.headers)

    def _function_url(self, environ: dict[str, Any], start_response: StartResponse, method: str) -> list[bytes]:
        """``/__lambda_url__/{url-id}/{path}``: an AWS_IAM function URL (:mod:`.function_urls`)."""
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "")))
        query = environ.get("QUERY_STRING", "")
        url = f"{self.sandbox.endpoint_url}{raw.split('?', 1)[0]}" + (f"?{query}" if query else "")
        rest = raw.split("?", 1)[0][len(FUNCTION_URL_PATH) :]
        enforce_iam = getattr(self.sandbox, "enforce_iam", True)
        request_headers = _headers(environ)  # WSGI keeps Content-Type/-Length out of HTTP_*; a signature covers them
        request_headers.update({k: environ[v] for k, v in _CONTENT_HEADERS.items() if environ.get(v)})
        status, headers, body = serve_function_url(
            self.sandbox, method, url, rest, query, request_headers, _read_body(environ), enforce_iam=enforce_iam
        )
        reasons = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
        return _respond(start_response, f"{status} {reasons.get(status, 'Status')}", body, list(headers.items()))

    def _cfn_response(self, environ: dict[str, Any], start_response: StartResponse, request_id: str) -> list[bytes]:
        pending = self.sandbox.pending_responses.get(request_id)
        body = _read_body(environ)
        if pending is None:
            return _respond(start_response, "403 Forbidden", b"unknown or expired ResponseURL")
        pending.deliver(body)
        return _respond(start_response, "200 OK", b"")


class QuietRequestHandler(MotoRequestHandler):
    """moto's request handler, logging requests at DEBUG instead of printing them."""

    def log(self, type: str, message: str, *args: Any) -> None:
        logger.log(logging.WARNING if type == "error" else logging.DEBUG, message, *args)
