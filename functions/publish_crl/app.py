"""CRL publication function: build, sign (KMS) and publish the root and issuing CRLs; put the
``Certificate Issued`` and ``Certificate Revoked`` events.

Triggers (template.yaml): the table's stream filtered to revocations and issuances (the issuing
CRL within seconds when the batch holds a revocation; the events of every record), an hourly
schedule (both CRLs, long before nextUpdate), and the ``InitialCrls`` custom resource on deploy
(both). A failure raises, so the stream or schedule retries, and counts in the
``CrlPublicationFailures`` metric that an alarm watches; the previous CRL stays in place.
The table has room for two stream consumers per shard (this function and the KeyValueStore
sync), so this function also carries the stream's events: an event still refused after
in-process retries counts in ``EventPublicationFailures`` (alarmed) and fails the batch, which
the stream retries (then the failure queue, alarmed).
A table record that cannot be read is skipped, logged by key and counted in
``UnreadableRecords`` (``UnreadableRecordsAlarm``): it never stops the publication of the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kmsca.ca import CaSigner
from kmsca.certificates import ISSUING, ROOT
from kmsca.crl import CrlPublisher
from kmsca.custom_resource import is_custom_resource_event, run_custom_resource
from kmsca.errors import AwsCallFailed
from kmsca.events import EventPublisher
from kmsca.lifecycle_events import certificate_events, is_revocation
from kmsca.publish import Artefact
from kmsca.publish import publish as publish_object
from kmsca.records import UnreadableRecord, iso
from kmsca.responder import presign_ca_status
from kmsca.settings import CrlSettings
from kmsca.store import DynamoDbCertificateStore, revoked_entries_from_stream
from kmsca.wiring import crl_signers

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=("botocore",))  # not patch_all: it imports every library X-Ray knows

SETTINGS = CrlSettings.from_env()
kms = boto3.client("kms")
s3 = boto3.client("s3")
store = DynamoDbCertificateStore(boto3.client("dynamodb"), SETTINGS.table_name)
publisher = CrlPublisher(
    store, s3, SETTINGS.public_bucket, SETTINGS.internal_bucket, timedelta(hours=SETTINGS.crl_validity_hours)
)
events = EventPublisher(boto3.client("events"), SETTINGS.event_source)
#: Attempts per refused event entry before the batch fails (PutEvents FailedEntryCount).
EVENT_ATTEMPTS = 3
_signers: dict[str, CaSigner] = {}


def signers() -> dict[str, CaSigner]:
    """CA records and KMS keys, loaded on first use and kept for the warm container."""
    if not _signers:
        _signers.update(crl_signers(SETTINGS, store, kms))
    return _signers


def publish(cas: tuple[str, ...], records: Sequence[Mapping[str, Any]] = ()) -> dict[str, str]:
    """Publish the CRLs of ``cas``, each also listing the revocations of that CA carried by
    ``records`` (the triggering stream records); returns ``{"<Ca>CrlNumber": "n"}``."""
    result = {}
    for ca in cas:
        problems: list[UnreadableRecord] = []
        try:
            carried = revoked_entries_from_stream(list(records), ca, problems)
            publication = publisher.publish(signers()[ca], datetime.now(UTC), carried)
        except Exception:
            metrics.add_metric(name="CrlPublicationFailures", unit=MetricUnit.Count, value=1)
            logger.exception("CRL publication failed", extra={"ca": ca})
            raise
        finally:
            report_unreadable(ca, problems)
        report_unreadable(ca, list(publication.unreadable))
        logger.info(
            "CRL published" if publication.published else "CRL archived; a newer one was already published",
            extra={
                "ca": ca,
                "crl_number": publication.crl_number,
                "entries": publication.entries,
                "next_update": iso(publication.next_update),
                "der_size": publication.der_size,
            },
        )
        metrics.add_metric(name="CrlPublished", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="CrlEntries", unit=MetricUnit.Count, value=publication.entries)
        result[f"{ca.capitalize()}CrlNumber"] = str(publication.crl_number)
        if ca == ROOT:
            presign_issuing_ca_status(publication.this_update, publication.next_update)
    return result


def presign_issuing_ca_status(this_update: datetime, next_update: datetime) -> None:
    """With each root CRL: root-signed OCSP responses about the current issuing CA certificate
    (read afresh: bootstrap may have re-issued it), valid as long as that CRL, which the OCSP
    responder serves without ever holding the root key. Two ``kms:Sign`` (SHA-1 and SHA-256 CertIDs)."""
    issuing = store.get_cas([ISSUING])[ISSUING].certificate
    for key, der in presign_ca_status(signers()[ROOT], issuing, this_update, next_update).items():
        publish_object(s3, SETTINGS.public_bucket, Artefact(key, der, "application/ocsp-response"))


def report_unreadable(ca: str | None, problems: list[UnreadableRecord]) -> None:
    """Log each unreadable record with its key (never its content) and count them
    (``UnreadableRecords``, which ``UnreadableRecordsAlarm`` watches); ``ca``: the CRL it was
    left out of, None for an event."""
    for problem in problems:
        scope = {"ca": ca} if ca is not None else {}
        logger.error("unreadable record", extra={**scope, "record_key": problem.key, "problem": problem.problem})
    if problems:
        metrics.add_metric(name="UnreadableRecords", unit=MetricUnit.Count, value=len(problems))


def cas_for(event: Mapping[str, Any]) -> tuple[str, ...]:
    """A stream batch (revocations of end entities) needs the issuing CRL; anything else both."""
    return (ISSUING,) if "Records" in event else (ROOT, ISSUING)


def handle_stream(records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A stream batch: the issuing CRL when it holds a revocation (never for issuances alone),
    then the events of its records.

    Raises:
        RuntimeError: an event was refused every attempt (the stream retries the whole batch).
    """
    result = publish((ISSUING,), records) if any(is_revocation(r) for r in records) else {}
    problems: list[UnreadableRecord] = []
    batch = certificate_events(records, problems)
    report_unreadable(None, problems)
    try:
        failed = events.publish(batch, attempts=EVENT_ATTEMPTS) if batch else []
    except AwsCallFailed:
        metrics.add_metric(name="EventPublicationFailures", unit=MetricUnit.Count, value=len(batch))
        logger.exception("PutEvents failed; the stream retries the batch", extra={"events": len(batch)})
        raise
    metrics.add_metric(name="CertificateEventsPublished", unit=MetricUnit.Count, value=len(batch) - len(failed))
    if failed:
        metrics.add_metric(name="EventPublicationFailures", unit=MetricUnit.Count, value=len(failed))
        for event, code in failed:
            logger.error(
                "event not put",
                extra={"detail_type": event.detail_type, "serial_number": event.detail["serial_number"], "error": code},
            )
        raise RuntimeError(f"{len(failed)} of {len(batch)} event(s) refused by EventBridge; the stream retries")
    result["CertificateEvents"] = str(len(batch))
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    if is_custom_resource_event(event):
        return run_custom_resource(event, lambda _: publish((ROOT, ISSUING)), f"{SETTINGS.table_name}/initial-crls")
    if "Records" in event:
        # The RevokedByCa index lags the table: the records themselves carry the revocations.
        return handle_stream(event["Records"])
    return publish(cas_for(event))
