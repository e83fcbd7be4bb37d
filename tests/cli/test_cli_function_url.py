"""The CLIs' function-URL transport (utils/certcli/function_url.py): SigV4-signed POST, answers
mapped like a direct Invoke's, Lambda's 403 explained; the stack's URL output preferred."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest
from certcli import aws
from certcli.errors import CliError, Refused
from certcli.function_url import call_function_url, is_function_url, url_region


class Recorder(BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b"{}")
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.seen.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        status, payload = Recorder.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/__lambda_url__/abc/"
    finally:
        server.shutdown()


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "lambda", region_name="eu-west-1", aws_access_key_id="AKIAEXAMPLEEXAMPLE12", aws_secret_access_key="s" * 40
    )


def test_the_request_is_a_signed_post_of_the_json_payload(url: str, client: Any) -> None:
    Recorder.answer = (200, b'{"serial_number": "0a"}')
    assert call_function_url(client, url, {"csr": "x"}) == {"serial_number": "0a"}
    (seen,) = Recorder.seen
    assert seen["body"] == {"csr": "x"} and seen["path"] == "/__lambda_url__/abc/"
    authorization = seen["headers"]["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEEXAMPLE12/")
    assert "/eu-west-1/lambda/aws4_request" in authorization


def test_a_refusal_of_the_ca_keeps_its_code(url: str, client: Any) -> None:
    Recorder.answer = (403, b'{"error": "NotAuthorized", "message": "not authorized by issuance policy rule \'web\'"}')
    with pytest.raises(Refused) as refused:
        call_function_url(client, url, {})
    assert refused.value.code == "NotAuthorized" and "rule 'web'" in refused.value.message


def test_lambdas_own_403_says_which_permissions_are_missing(url: str, client: Any) -> None:
    Recorder.answer = (403, b'{"Message":"Forbidden"}')
    with pytest.raises(CliError) as forbidden:
        call_function_url(client, url, {}, "revoke function")
    assert forbidden.value.code == "Forbidden"
    for needed in ("lambda:InvokeFunctionUrl", "lambda:InvokedViaFunctionUrl", "RevokerPolicy", "CallerAccountIds"):
        assert needed in forbidden.value.message


def test_other_answers_are_unexpected(url: str, client: Any) -> None:
    Recorder.answer = (502, b'{"Message":"Internal Server Error"}')
    with pytest.raises(CliError, match="HTTP 502: Internal Server Error"):
        call_function_url(client, url, {})


def test_urls_and_regions() -> None:
    assert is_function_url("https://abc.lambda-url.us-west-2.on.aws/") and not is_function_url("kmsca-Issue")
    assert url_region("https://abc123.lambda-url.us-west-2.on.aws/") == "us-west-2"
    assert url_region("http://127.0.0.1:4566/__lambda_url__/abc/") is None


def test_the_stack_url_output_is_preferred_and_the_name_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = {"IssueFunctionName": "kmsca-Issue", "IssueFunctionUrl": "https://a.lambda-url.eu-west-1.on.aws/"}
    monkeypatch.setattr(aws, "stack_outputs", lambda cloudformation, stack: outputs)
    target = aws.resolve_target(lambda: None, function_name=None, stack_name="kmsca", ca_bundle_uri=None)  # type: ignore[arg-type,return-value]
    assert (target.function_name, target.callee) == ("kmsca-Issue", outputs["IssueFunctionUrl"])
    named = aws.resolve_target(lambda: None, function_name="kmsca-Issue", stack_name="kmsca", ca_bundle_uri=None)  # type: ignore[arg-type,return-value]
    assert named.callee == "kmsca-Issue"  # a name given: direct Invoke (administrators)
