"""CloudFront distributions and Lambda function URLs in the sandbox: created from the template,
served on the sandbox's own port.

- ``AWS::Lambda::Url``: with ``AuthType: NONE``, a URL ``https://<id>.lambda-url.<region>.on.aws/``
  as AWS gives (not resolvable: only a distribution that names it as an origin reaches it, as
  CloudFront would); with ``AWS_IAM``, the sandbox address ``http://127.0.0.1:<port>/__lambda_url__/<id>/``
  that :mod:`.function_urls` serves to SigV4-signed callers.
- ``AWS::CloudFront::OriginAccessControl``: recorded.
- ``AWS::CloudFront::Distribution``: its ``DomainName`` is ``127.0.0.1:<port>/__cloudfront__/<id>``
  (the sandbox's address with a path prefix, so ``http://${Distribution.DomainName}`` in the
  template resolves on this machine; the path prefix is the one departure from AWS, whose domain
  is ``<id>.cloudfront.net``). A request under it is routed as CloudFront routes it: the first
  cache behaviour whose ``PathPattern`` matches (else the default), its ``AllowedMethods``, then its
  origin: an S3 bucket read as the distribution (allowed only when a bucket policy in the template
  grants ``cloudfront.amazonaws.com`` ``s3:GetObject``, origin access control; a missing object
  is 403, as S3 answers a caller without ``s3:ListBucket``), or a function URL, invoked with a
  payload format 2.0 event. Nothing is cached: the origin's ``Cache-Control`` is passed on.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from .context import SandboxError, StackContext
from .function_urls import FUNCTION_URL_PATH
from .resources import creates, random_suffix
from .template import Physical, Resource

__all__ = ["DISTRIBUTION_PATH", "Distribution", "HttpAnswer"]

DISTRIBUTION_PATH = "/__cloudfront__/"


@dataclass(frozen=True)
class HttpAnswer:
    """status (``"200 OK"``), headers, body."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


def _error(status: str, message: str) -> HttpAnswer:
    return HttpAnswer(status, [("Content-Type", "text/plain")], message.encode())


@dataclass
class Distribution:
    """A distribution as created: its config (resolved) and the sandbox that serves its origins."""

    id: str
    config: dict[str, Any]
    sandbox: Any

    def behaviour(self, path: str) -> dict[str, Any]:
        """The first cache behaviour whose PathPattern matches ``path`` (CloudFront order), else the default."""
        for behaviour in self.config.get("CacheBehaviors") or []:
            if fnmatch.fnmatchcase(path.lstrip("/"), str(behaviour["PathPattern"]).lstrip("/")):
                return dict(behaviour)
        return dict(self.config["DefaultCacheBehavior"])

    def origin(self, origin_id: str) -> dict[str, Any]:
        for origin in self.config["Origins"]:
            if origin["Id"] == origin_id:
                return dict(origin)
        raise SandboxError(f"distribution {self.id}: no origin {origin_id}")

    def serve(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpAnswer:
        """Answer one viewer request for ``path`` (after the distribution's prefix)."""
        behaviour = self.behaviour(path)
        if method not in [str(m) for m in behaviour.get("AllowedMethods") or ["GET", "HEAD"]]:
            return _error("403 Forbidden", "This distribution is not configured to allow the HTTP request method")
        origin = self.origin(str(behaviour["TargetOriginId"]))
        if "S3OriginConfig" in origin:
            return self._s3(origin, method, path)
        return self._function_url(origin, method, path, query, headers, body)

    def _s3(self, origin: Mapping[str, Any], method: str, path: str) -> HttpAnswer:
        bucket = str(origin["DomainName"]).split(".s3.", 1)[0]
        if not origin.get("OriginAccessControlId") or not self.sandbox_allows_cloudfront(bucket):
            return _error("403 Forbidden", "AccessDenied (no origin access control grant)")
        try:
            response = self.sandbox.client("s3").get_object(Bucket=bucket, Key=unquote(path.lstrip("/")))
        except ClientError:
            return _error("403 Forbidden", "AccessDenied")  # OAC without s3:ListBucket: 403 for a missing key
        body = response["Body"].read()
        headers = [("Content-Type", str(response.get("ContentType", "binary/octet-stream")))]
        for name, key in (("Cache-Control", "CacheControl"), ("ETag", "ETag")):
            if response.get(key):
                headers.append((name, str(response[key])))
        return HttpAnswer("200 OK", headers, b"" if method == "HEAD" else body)

    def sandbox_allows_cloudfront(self, bucket: str) -> bool:
        """Whether a bucket policy of the template lets cloudfront.amazonaws.com GetObject in ``bucket``."""
        for resource in self.sandbox.template.of_type("AWS::S3::BucketPolicy"):
            props = self.sandbox.resolve(resource.properties)
            if str(props.get("Bucket")) != bucket:
                continue
            for statement in props["PolicyDocument"]["Statement"]:
                principal = statement.get("Principal") or {}
                service = principal.get("Service") if isinstance(principal, Mapping) else None
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                condition = json.dumps(statement.get("Condition") or {})
                if (
                    statement["Effect"] == "Allow"
                    and service == "cloudfront.amazonaws.com"
                    and "s3:GetObject" in actions
                    and f"distribution/{self.id}" in condition
                ):
                    return True
        return False

    def _function_url(
        self, origin: Mapping[str, Any], method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> HttpAnswer:
        logical_id = self.sandbox.function_urls.get(str(origin["DomainName"]))
        if logical_id is None:
            return _error("502 Bad Gateway", f"origin {origin['DomainName']} does not resolve")
        event = {
            "version": "2.0",
            "rawPath": path,
            "rawQueryString": query,
            "headers": {k.lower(): v for k, v in headers.items()},
            "requestContext": {"http": {"method": method, "path": path}},
            "body": base64.b64encode(body).decode("ascii"),
            "isBase64Encoded": True,
        }
        result = self.sandbox.run_function(logical_id, event)
        if result.function_error:
            return _error("502 Bad Gateway", "the function failed")
        answer = json.loads(result.payload)
        payload = answer.get("body") or ""
        data = base64.b64decode(payload) if answer.get("isBase64Encoded") else str(payload).encode()
        status = int(answer.get("statusCode", 200))
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Status")
        return HttpAnswer(
            f"{status} {reason}", [(str(k), str(v)) for k, v in (answer.get("headers") or {}).items()], data
        )


@creates("AWS::Lambda::Url")
def _create_function_url(sandbox: StackContext, resource: Resource) -> Physical:
    props = sandbox.resolve(resource.properties)
    function, _ = sandbox.lookup_function(str(props["TargetFunctionArn"]))
    if function is None:
        raise SandboxError(f"{resource.logical_id}: no function {props['TargetFunctionArn']}")
    url_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(32))
    if props.get("AuthType") == "AWS_IAM":  # called directly, signed: served by .function_urls
        sandbox.function_urls[url_id] = function.logical_id  # type: ignore[attr-defined]
        url = f"{sandbox.endpoint_url}{FUNCTION_URL_PATH}{url_id}/"
        return Physical(ref=url, attrs={"FunctionUrl": url, "FunctionArn": function.arn})
    host = f"{url_id}.lambda-url.{sandbox.region}.on.aws"
    sandbox.function_urls[host] = function.logical_id  # type: ignore[attr-defined]
    return Physical(ref=host, attrs={"FunctionUrl": f"https://{host}/", "FunctionArn": function.arn})


@creates("AWS::CloudFront::OriginAccessControl")
def _create_origin_access_control(sandbox: StackContext, resource: Resource) -> Physical:
    oac_id = "E" + random_suffix(13)
    return Physical(ref=oac_id, attrs={"Id": oac_id})


@creates("AWS::CloudFront::Distribution")
def _create_distribution(sandbox: StackContext, resource: Resource) -> Physical:
    config = dict(sandbox.resolve(resource.properties)["DistributionConfig"])
    distribution_id = "E" + random_suffix(13)
    sandbox.distributions[distribution_id] = Distribution(distribution_id, config, sandbox)  # type: ignore[attr-defined]
    domain = sandbox.endpoint_url.split("://", 1)[1] + DISTRIBUTION_PATH + distribution_id
    return Physical(ref=distribution_id, attrs={"DomainName": domain, "Id": distribution_id})
