"""The sandbox's CloudFront distribution (utils/sandbox/distribution.py) routes as the template's
PublicDistribution says: /ocsp and /ocsp/* to the OCSP function URL, everything else to the
bucket through origin access control, 403 for a missing object or a method the behaviour refuses."""

from __future__ import annotations

import base64
import copy
import json
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from tests.support.aws import REGION, TEMPLATE
from utils.sandbox.distribution import Distribution

BUCKET = "ca-public"
FUNCTION_HOST = "abc123.lambda-url.eu-west-1.on.aws"
DISTRIBUTION_ID = "E2SANDBOX"


class FakeSandbox:
    """What Distribution uses of the sandbox: an S3 client, the template's bucket policies, the
    function URL table and run_function (recorded, answering like the OCSP function)."""

    def __init__(self, grants_distribution: bool = True) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.function_urls = {FUNCTION_HOST: "OcspFunction"}
        self.events: list[dict[str, Any]] = []
        source = f"arn:aws:cloudfront::123456789012:distribution/{DISTRIBUTION_ID if grants_distribution else 'EOTHER'}"
        policy = SimpleNamespace(properties={"Bucket": BUCKET, "PolicyDocument": {"Statement": [{
            "Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*", "Condition": {"StringEquals": {"AWS:SourceArn": source}}}]}})
        self.template = SimpleNamespace(of_type=lambda kind: [policy] if kind == "AWS::S3::BucketPolicy" else [])

    def client(self, service: str) -> Any:
        assert service == "s3"
        return self.s3

    def resolve(self, value: Any) -> Any:
        return value

    def run_function(self, logical_id: str, event: dict[str, Any]) -> Any:
        self.events.append({"function": logical_id, **event})
        answer = {"statusCode": 200, "headers": {"Content-Type": "application/ocsp-response",
                                                 "Cache-Control": "max-age=3600"},
                  "body": base64.b64encode(b"\x30\x03\x0a\x01\x00").decode(), "isBase64Encoded": True}  # fmt: skip
        return SimpleNamespace(function_error=None, payload=json.dumps(answer).encode())


def _template_config() -> dict[str, Any]:
    """PublicDistribution's DistributionConfig from template.yaml, with its intrinsics resolved."""
    config = copy.deepcopy(TEMPLATE["Resources"]["PublicDistribution"]["Properties"]["DistributionConfig"])
    bucket_origin, function_origin = config["Origins"]
    assert bucket_origin["Id"] == "PublicBucket" and function_origin["Id"] == "OcspResponder"
    bucket_origin.update(DomainName=f"{BUCKET}.s3.{REGION}.amazonaws.com", OriginAccessControlId="OAC1")
    function_origin["DomainName"] = FUNCTION_HOST
    config.pop("Comment", None)
    return dict(config)


@pytest.fixture
def sandbox(aws: None) -> FakeSandbox:
    fake = FakeSandbox()
    fake.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    fake.s3.put_object(Bucket=BUCKET, Key="issuing.crl", Body=b"crl-der", ContentType="application/pkix-crl",
                       CacheControl="max-age=60")  # fmt: skip
    return fake


def _distribution(sandbox: FakeSandbox) -> Distribution:
    return Distribution(DISTRIBUTION_ID, _template_config(), sandbox)


@pytest.mark.parametrize("path", ["/ocsp", "/ocsp/MEIwQDA%2BMDwwOjAJBgUrDgMCGgUABBQ"])
def test_ocsp_get_goes_to_the_function_url(sandbox: FakeSandbox, path: str) -> None:
    answer = _distribution(sandbox).serve("GET", path, "", {"Accept": "*/*"}, b"")
    assert answer.status == "200 OK" and answer.body == b"\x30\x03\x0a\x01\x00"
    assert ("Cache-Control", "max-age=3600") in answer.headers
    (event,) = sandbox.events
    assert event["function"] == "OcspFunction" and event["version"] == "2.0"
    assert event["rawPath"] == path and event["requestContext"]["http"]["method"] == "GET"


def test_ocsp_post_goes_to_the_function_url_with_the_body(sandbox: FakeSandbox) -> None:
    body = b"\x30\x42 der request"
    answer = _distribution(sandbox).serve("POST", "/ocsp", "", {"Content-Type": "application/ocsp-request"}, body)
    assert answer.status == "200 OK"
    (event,) = sandbox.events
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == body
    assert event["headers"]["content-type"] == "application/ocsp-request"


def test_other_paths_go_to_the_bucket(sandbox: FakeSandbox) -> None:
    answer = _distribution(sandbox).serve("GET", "/issuing.crl", "", {}, b"")
    assert answer.status == "200 OK" and answer.body == b"crl-der"
    assert ("Content-Type", "application/pkix-crl") in answer.headers
    assert ("Cache-Control", "max-age=60") in answer.headers
    assert sandbox.events == []


@pytest.mark.parametrize("path", ["/missing.crl", "/ocspx", "/ocsp.crl"])
def test_a_missing_object_is_403_as_s3_answers_cloudfront_without_list_bucket(sandbox: FakeSandbox, path: str) -> None:
    answer = _distribution(sandbox).serve("GET", path, "", {}, b"")
    assert answer.status == "403 Forbidden"
    assert sandbox.events == []  # not the OCSP function: only "ocsp" and "ocsp/*" are routed there


def test_post_to_the_bucket_is_refused(sandbox: FakeSandbox) -> None:
    answer = _distribution(sandbox).serve("POST", "/issuing.crl", "", {}, b"x")
    assert answer.status == "403 Forbidden"


def test_a_bucket_that_does_not_grant_this_distribution_is_403(aws: None) -> None:
    fake = FakeSandbox(grants_distribution=False)
    fake.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    fake.s3.put_object(Bucket=BUCKET, Key="issuing.crl", Body=b"crl-der")
    assert _distribution(fake).serve("GET", "/issuing.crl", "", {}, b"").status == "403 Forbidden"
