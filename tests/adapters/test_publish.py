"""kmsca.publish against S3's documented answers for a missing object, a refused condition and a
failure, which leaves as AwsCallFailed (botocore Stubber)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from kmsca.errors import AwsCallFailed
from kmsca.publish import Artefact, archive, publish

from tests.support.aws import REGION

ARTEFACT = Artefact("issuing.crl", b"crl bytes", "application/pkix-crl")


@pytest.fixture
def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def test_a_404_means_absent_and_the_object_is_created_only_if_still_absent(s3: Any) -> None:
    """With s3:ListBucket (the template grants it), HeadObject of a missing key answers 404."""
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404,
                              expected_params={"Bucket": "public", "Key": "issuing.crl"})
        stub.add_response("put_object", {"ETag": '"1"'}, {
            "Bucket": "public", "Key": "issuing.crl", "Body": ARTEFACT.body, "ContentType": "application/pkix-crl",
            "CacheControl": "max-age=60", "Metadata": {"sha256": ARTEFACT.sha256, "crl-number": "7"},
            "IfNoneMatch": "*",
        })
        assert publish(s3, "public", ARTEFACT, crl_number=7) is True
        stub.assert_no_pending_responses()


def test_a_403_is_an_access_problem_and_raises(s3: Any) -> None:
    """403 is what S3 answers for a missing key without s3:ListBucket, and for any real denial:
    it is never taken for "absent", so nothing is written."""
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", service_error_code="403", http_status_code=403,
                              expected_params={"Bucket": "public", "Key": ANY})
        with pytest.raises(AwsCallFailed) as raised:
            publish(s3, "public", ARTEFACT, crl_number=7)
        assert raised.value.error_code == "403"
        assert (raised.value.service, raised.value.operation, raised.value.http_status_code) == ("s3", "HeadObject", 403)
        assert isinstance(raised.value.__cause__, ClientError)
        stub.assert_no_pending_responses()


def _conflict(stub: Stubber, etag: str, crl_number: str) -> None:
    stub.add_response("head_object", {"ETag": etag, "Metadata": {"sha256": "other", "crl-number": crl_number}},
                      {"Bucket": "public", "Key": "issuing.crl"})
    stub.add_client_error("put_object", service_error_code="PreconditionFailed", http_status_code=412)


def test_a_crl_refused_by_lower_numbered_writers_retries_then_stops_at_a_higher_number(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each refused write means another writer succeeded; one that finds a number as high as its
    own stops without writing (a CRL never rolls back)."""
    monkeypatch.setattr("kmsca.publish.time.sleep", lambda _seconds: None)
    with Stubber(s3) as stub:
        _conflict(stub, '"1"', "5")
        _conflict(stub, '"2"', "6")
        stub.add_response("head_object", {"ETag": '"3"', "Metadata": {"sha256": "other", "crl-number": "7"}},
                          {"Bucket": "public", "Key": "issuing.crl"})
        assert publish(s3, "public", ARTEFACT, crl_number=7) is False
        stub.assert_no_pending_responses()


def test_an_object_that_keeps_changing_is_a_publication_conflict(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from kmsca.errors import InternalFailure, PublicationConflict
    from kmsca.publish import CONDITIONAL_WRITE_ATTEMPTS

    monkeypatch.setattr("kmsca.publish.time.sleep", lambda _seconds: None)
    with Stubber(s3) as stub:
        for attempt in range(CONDITIONAL_WRITE_ATTEMPTS):
            _conflict(stub, f'"{attempt}"', "1")
        with pytest.raises(PublicationConflict) as raised:
            publish(s3, "public", ARTEFACT, crl_number=7)
        stub.assert_no_pending_responses()
    assert isinstance(raised.value, InternalFailure)
    assert raised.value.details == {"key": "issuing.crl", "attempts": CONDITIONAL_WRITE_ATTEMPTS}


def test_a_refused_put_is_translated_and_not_retried(s3: Any) -> None:
    """Only a failed condition is retried; a denial on PutObject leaves at once as AwsCallFailed."""
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        stub.add_client_error("put_object", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(AwsCallFailed) as raised:
            publish(s3, "public", ARTEFACT, crl_number=7)
        stub.assert_no_pending_responses()
    assert (raised.value.operation, raised.value.error_code, raised.value.answered) == ("PutObject", "AccessDenied", True)


def test_a_call_without_an_answer_is_translated(s3: Any) -> None:
    from botocore.exceptions import EndpointConnectionError

    class Unreachable:
        def head_object(self, **kwargs: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://s3")

    with pytest.raises(AwsCallFailed) as raised:
        publish(Unreachable(), "public", ARTEFACT)  # type: ignore[arg-type]
    assert (raised.value.operation, raised.value.error_code, raised.value.answered) == (
        "HeadObject", "EndpointConnectionError", False)


def test_archive_puts_unconditionally_and_translates_a_failure(s3: Any) -> None:
    archived = Artefact("crl/issuing/0000000007.crl", b"crl bytes", "application/pkix-crl")
    with Stubber(s3) as stub:
        stub.add_response("put_object", {"ETag": '"1"'}, {
            "Bucket": "internal", "Key": archived.key, "Body": archived.body, "ContentType": archived.content_type,
        })
        archive(s3, "internal", archived)
        stub.add_client_error("put_object", service_error_code="NoSuchBucket", http_status_code=404)
        with pytest.raises(AwsCallFailed) as raised:
            archive(s3, "internal", archived)
        stub.assert_no_pending_responses()
    assert (raised.value.service, raised.value.operation, raised.value.error_code) == ("s3", "PutObject", "NoSuchBucket")
