"""Calling the CA's issue and revoke functions through their function URLs (``AuthType: AWS_IAM``).

The request is a ``POST`` of the JSON request, signed with SigV4 (botocore's ``SigV4Auth``,
service ``lambda``) with the user's credentials (the same chain as every boto3 client:
``--profile``, ``AWS_*`` variables, instance roles). The region is the URL's
(``https://<id>.lambda-url.<region>.on.aws/``), else the client's (the local sandbox's URLs are
``http://127.0.0.1:<port>/__lambda_url__/<id>/``).

Answers (the CA's function-URL edge, ``layers/ca/kmsca/function_url.py``): 200 with the response
JSON; a refusal of the CA as ``{"error": <code>, "message": <sentence>}`` (raised as
:class:`~certcli.errors.Refused` with that code, like a direct Invoke's ``errorType``); a
refusal of Lambda itself (``{"Message": "Forbidden"}``, HTTP 403: bad signature or missing
permission) as :class:`~certcli.errors.CliError` ``Forbidden`` saying which permissions are
needed.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from .errors import CliError, Refused

_LAMBDA_URL_HOST = re.compile(r"^[a-z0-9]+\.lambda-url\.(?P<region>[a-z0-9-]+)\.on\.aws$")


def is_function_url(name: str) -> bool:
    """Whether ``name`` (a ``--function-name`` value or stack output) is a function URL, not a name or ARN."""
    return name.startswith(("https://", "http://"))


def url_region(url: str) -> str | None:
    """The region in an AWS function URL's host, or None (another host, e.g. the sandbox's)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    match = _LAMBDA_URL_HOST.match(host)
    return match.group("region") if match else None


def _forbidden_help(url: str, what: str) -> str:
    return (
        f"the {what} URL {url} refused the request (HTTP 403 Forbidden): the signature is not valid for these "
        "credentials (check the clock, --profile / AWS_PROFILE and the region), or your IAM principal lacks "
        "lambda:InvokeFunctionUrl (condition lambda:FunctionUrlAuthType AWS_IAM) and lambda:InvokeFunction "
        "(condition lambda:InvokedViaFunctionUrl true) on the function: attach the stack's "
        f"{'RevokerPolicy' if 'revoke' in what else 'RequesterPolicy'} (RequesterPolicyArn / RevokerPolicyArn "
        "outputs) or an equivalent policy; from another account, the CA stack must also name your account "
        "(CallerAccountIds) or organisation (CallerOrganizationId)"
    )


def call_function_url(
    lambda_client: Any, url: str, payload: Mapping[str, Any], what: str = "issue function"
) -> dict[str, Any]:
    """POST ``payload`` to a function URL, signed with the credentials and region of ``lambda_client``.

    Args:
        lambda_client: a boto3 Lambda client: its credentials, region (when the URL has none) and
            read timeout are used.
        url: the function URL.
        what: the function's role, for messages.

    Returns:
        The decoded response object.

    Raises:
        Refused: the CA refused the request (its code and message, e.g. ``NotAuthorized``).
        CliError: ``NoCredentials``; ``Forbidden`` (403 from Lambda: signature or IAM, with the
            permissions needed); ``UnexpectedResponse`` (not JSON, or another HTTP error).
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = lambda_client._request_signer._credentials  # the client's own credential chain
    if credentials is None:
        raise CliError("NoCredentials", f"no AWS credentials to sign the request to the {what} URL")
    region = url_region(url) or lambda_client.meta.region_name
    body = json.dumps(payload).encode()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials.get_frozen_credentials(), "lambda", region).add_auth(request)
    prepared = urllib.request.Request(url, data=body, headers=dict(request.headers.items()), method="POST")
    timeout = getattr(lambda_client.meta.config, "read_timeout", None) or 90
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise CliError("Unreachable", f"cannot reach the {what} URL {url}: {error}") from None
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    if status == 200 and isinstance(answer, dict):
        return answer
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        raise Refused(answer["error"], str(answer.get("message", "")).strip() or "(no message)")
    if status == 403:
        raise CliError("Forbidden", _forbidden_help(url, what))
    if status == 200:
        raise CliError("UnexpectedResponse", f"the {what} did not return a JSON object")
    detail = answer.get("Message") if isinstance(answer, dict) else raw[:200].decode("utf-8", "replace")
    raise CliError("UnexpectedResponse", f"the {what} URL answered HTTP {status}: {detail}")
