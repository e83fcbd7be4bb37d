"""The adapters translate botocore's exceptions: a refusal they expect becomes its precise error, any
other AWS failure :class:`kmsca.errors.AwsCallFailed` (with the AWS error code, the botocore type,
the HTTP status and the original as ``__cause__``), never a ``ClientError`` (botocore Stubber)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from kmsca.acm import ACM_REGION, AcmImporter, import_may_have_happened
from kmsca.aws_errors import aws_call_failed, translating
from kmsca.edge_session import EdgeSessions, RoleCredentials
from kmsca.errors import AcmCertificateGone, AwsCallFailed, PendingImportGone, error_name
from kmsca.kvs import KeyValueStoreSync, KvsSyncFailed
from kmsca.notify import Notifier
from kmsca.ocsp_presigned import S3PresignedSource
from kmsca.store import DynamoDbCertificateStore

from tests.support.aws import REGION

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ARN = "arn:aws:acm:us-east-1:111122223333:certificate/11111111-2222-4333-8444-555555555555"


def _refused(caught: pytest.ExceptionInfo[AwsCallFailed], service: str, operation: str, code: str, status: int) -> None:
    failure = caught.value
    assert (failure.service, failure.operation, failure.error_code, failure.http_status_code) == (
        service, operation, code, status,
    )
    # named as botocore named it: ClientError, or the service's modelled subclass (``client.exceptions``)
    assert failure.answered and isinstance(failure.__cause__, ClientError)
    assert error_name(failure) == type(failure.__cause__).__name__
    assert failure.code == "AwsCallFailed" and code in failure.message


def test_the_store_raises_aws_call_failed_for_a_throttled_read() -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    store = DynamoDbCertificateStore(dynamodb, "table")
    with Stubber(dynamodb) as stub, pytest.raises(AwsCallFailed) as caught:
        stub.add_client_error("get_item", "ProvisionedThroughputExceededException", http_status_code=400)
        store.get_certificate("0a")
    _refused(caught, "dynamodb", "GetItem", "ProvisionedThroughputExceededException", 400)


def test_the_store_translates_a_failure_while_listing_lazily() -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    store = DynamoDbCertificateStore(dynamodb, "table")
    entries = store.list_revoked("issuing", NOW)  # a generator: nothing is called yet
    with Stubber(dynamodb) as stub, pytest.raises(AwsCallFailed) as caught:
        stub.add_client_error("query", "InternalServerError", http_status_code=500)
        list(entries)
    _refused(caught, "dynamodb", "Query", "InternalServerError", 500)


def test_the_store_keeps_its_own_translation_of_a_failed_condition() -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    store = DynamoDbCertificateStore(dynamodb, "table")
    with Stubber(dynamodb) as stub, pytest.raises(PendingImportGone):
        stub.add_client_error("update_item", "ConditionalCheckFailedException")
        store.adopt_import("0a", ARN)


def test_acm_translates_a_missing_arn_and_any_other_refusal() -> None:
    acm = boto3.client("acm", region_name=ACM_REGION)
    importer = AcmImporter(acm)
    with Stubber(acm) as stub:
        stub.add_client_error("describe_certificate", "ResourceNotFoundException", expected_params={"CertificateArn": ARN})
        with pytest.raises(AcmCertificateGone):
            importer.served_serial(ARN)
        stub.add_client_error("add_tags_to_certificate", "ThrottlingException", http_status_code=400)
        with pytest.raises(AwsCallFailed) as caught:
            importer.tag(ARN, {"kmsca:serial-number": "0a"})
    _refused(caught, "acm", "AddTagsToCertificate", "ThrottlingException", 400)


def test_a_subclass_of_an_adapter_is_translated_too() -> None:
    class Refusing(AcmImporter):
        def delete(self, arn: str) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteCertificate")

    with pytest.raises(AwsCallFailed) as caught:
        Refusing(boto3.client("acm", region_name=ACM_REGION)).delete(ARN)
    assert (caught.value.operation, caught.value.error_code) == ("DeleteCertificate", "AccessDeniedException")


@pytest.mark.parametrize(
    ("status", "answered", "may_have"), [(400, True, False), (500, True, True), (None, False, True)]
)
def test_an_import_may_have_happened_only_without_a_refusal(status: int | None, answered: bool, may_have: bool) -> None:
    if answered:
        cause: Any = ClientError({"Error": {"Code": "X"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "ImportCertificate")
    else:
        cause = EndpointConnectionError(endpoint_url="https://acm.us-east-1.amazonaws.com")
    failure = aws_call_failed(cause, "acm", "ImportCertificate")
    assert failure.answered is answered
    assert import_may_have_happened(failure) is may_have is import_may_have_happened(cause)


def test_sns_failures_are_translated() -> None:
    sns = boto3.client("sns", region_name=REGION)
    with Stubber(sns) as stub, pytest.raises(AwsCallFailed) as caught:
        stub.add_client_error("publish", "AuthorizationError", http_status_code=403)
        Notifier(sns, "arn:aws:sns:eu-west-1:111122223333:topic").notify("E", "subject", {"serial_number": "0a"})
    _refused(caught, "sns", "Publish", "AuthorizationError", 403)


def test_presigned_ocsp_source_absent_or_failed() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    source = S3PresignedSource(s3, "public", lambda: NOW, ttl=timedelta(0))
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", "NoSuchKey", http_status_code=404)
        assert source.get("ocsp/root-signed/0a") is None
        stub.add_client_error("get_object", "AccessDenied", http_status_code=403)
        with pytest.raises(AwsCallFailed) as caught:
            source.get("ocsp/root-signed/0a")
    _refused(caught, "s3", "GetObject", "AccessDenied", 403)


def test_a_kvs_call_without_an_answer_is_a_sync_failure_named_after_botocore() -> None:
    class Unreachable:
        def describe_key_value_store(self, **kwargs: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://kvs")

    sync = KeyValueStoreSync(Unreachable(), "arn:aws:cloudfront::111122223333:key-value-store/k", None, "issuing")  # type: ignore[arg-type]
    with pytest.raises(KvsSyncFailed) as caught:
        sync._describe()
    assert (caught.value.code, caught.value.error_code) == ("KvsSyncFailed", "EndpointConnectionError")


def test_an_edge_client_that_cannot_be_made_is_translated() -> None:
    def factory(service: str, **kwargs: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://sts")

    credentials = RoleCredentials("AKIA", "secret", "token", NOW + timedelta(hours=1))
    with pytest.raises(AwsCallFailed) as caught:
        EdgeSessions(object(), client_factory=factory).client_with(credentials, "cloudfront-keyvaluestore")
    assert (caught.value.error_code, caught.value.answered) == ("EndpointConnectionError", False)
    assert "secret" not in str(caught.value.to_dict())


def test_translating_passes_the_cas_own_errors() -> None:
    with pytest.raises(PendingImportGone), translating("dynamodb"):
        raise PendingImportGone("gone", serial_number="0a")
