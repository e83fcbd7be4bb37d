"""The expiry job's rules on the in-memory store at a fixed time: which certificates get which
notice, each notice once per threshold, the index reads counted, failed events released for the next
run, CA certificates at their own thresholds, and the supersession sweep."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from kmsca.events import Event, EventPublisher
from kmsca.expiry import ExpiryJob
from kmsca.notify import Notifier
from kmsca.records import STATUS_REVOKED, iso
from kmsca.store import Renewal
from kmsca.table_keys import notice_key

from tests.support.local_ca import local_hierarchy
from tests.support.memory_store import MemoryNoticeMarkers, MemoryStore
from tests.support.records import NOW, certificate_record


class RecordingPublisher(EventPublisher):
    """EventBridge stand-in: records events; fails those whose serial number is in ``failing``."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.failing: set[str] = set()

    def publish(self, events: Sequence[Event], attempts: int = 1) -> list[tuple[Event, str]]:
        self.events += [e for e in events if e.detail["serial_number"] not in self.failing]
        return [(e, "InternalFailure") for e in events if e.detail["serial_number"] in self.failing]


class RecordingNotifier(Notifier):
    """SNS stand-in: records the digests."""

    def __init__(self) -> None:
        self.digests: list[dict[str, Any]] = []

    def notify(self, event: str, subject: str, details: Mapping[str, object]) -> None:
        self.digests.append({"event": event, "subject": subject, **details})


class Job:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.markers = MemoryNoticeMarkers()
        self.events = RecordingPublisher()
        self.notifier = RecordingNotifier()
        self.job = ExpiryJob(self.store, self.markers, self.events, self.notifier)

    def expiring(self) -> list[tuple[str, int]]:
        return [
            (e.detail["serial_number"], e.detail["threshold_days"])
            for e in self.events.events
            if e.detail_type == "Certificate Expiring"
        ]


def test_each_certificate_gets_the_notice_of_the_smallest_threshold_reached() -> None:
    job = Job()
    for serial, left in [("01", timedelta(days=13, hours=12)), ("02", timedelta(days=30)), ("03", timedelta(hours=1))]:
        job.store.put_certificate(replace(certificate_record(serial, not_after=NOW + left), requested_by="ci"))
    job.store.put_certificate(certificate_record("04", not_after=NOW + timedelta(days=30, seconds=1)))  # too far
    report = job.job.run(NOW)
    assert job.expiring() == [("03", 1), ("01", 14), ("02", 30)]
    assert report.queries == 1 and report.failed == [] and report.already_sent == 0
    assert report.notices[0] == {
        "serial_number": "03",
        "subject": "CN=device-03",
        "profile": "client",
        "not_after": iso(NOW + timedelta(hours=1)),
        "threshold_days": 1,
        "requested_by": "ci",
        "acm_certificate_arn": None,
    }
    (digest,) = job.notifier.digests
    assert digest["event"] == "CertificatesExpiring" and digest["count"] == 3 and digest["not_listed"] == 0


def test_revoked_expired_and_other_cas_certificates_get_no_notice() -> None:
    job = Job()
    job.store.put_certificate(certificate_record("01", not_after=NOW + timedelta(days=5)))
    job.store.revoke("01", "keyCompromise", NOW, None)
    job.store.put_certificate(certificate_record("02", not_after=NOW))  # expires now: no notice
    job.store.put_certificate(certificate_record("03", not_after=NOW - timedelta(days=1)))
    job.store.put_certificate(certificate_record("04", ca="other", not_after=NOW + timedelta(days=5)))
    report = job.job.run(NOW)
    assert job.events.events == [] and report.notices == [] and job.notifier.digests == []


def test_a_notice_is_sent_once_per_threshold() -> None:
    job = Job()
    job.store.put_certificate(certificate_record("01", not_after=NOW + timedelta(days=13)))
    job.job.run(NOW)
    again = job.job.run(NOW + timedelta(hours=1))
    assert again.notices == [] and again.already_sent == 1
    job.job.run(NOW + timedelta(days=7))
    assert job.expiring() == [("01", 14), ("01", 7)]
    assert set(job.markers.markers) == {notice_key("01", 14), notice_key("01", 7)}


def test_a_failed_event_is_released_and_sent_by_the_next_run() -> None:
    job = Job()
    job.store.put_certificate(certificate_record("01", not_after=NOW + timedelta(days=2)))
    job.events.failing = {"01"}
    report = job.job.run(NOW)
    assert report.failed == [{"serial_number": "01", "error": "InternalFailure"}] and job.markers.markers == {}
    job.events.failing = set()
    assert [n["serial_number"] for n in job.job.run(NOW).notices] == ["01"]


def test_ca_certificates_get_notices_at_their_own_thresholds() -> None:
    hierarchy = local_hierarchy(NOW - timedelta(days=1825 - 100))  # the issuing CA has 100 days left
    store = MemoryStore()
    store.put_ca(hierarchy.root)
    store.put_ca(hierarchy.issuing)
    job = Job(store)
    job.job.run(NOW)
    assert [(e.detail["ca"], e.detail["threshold_days"]) for e in job.events.events] == [("issuing", 180)]


def test_a_due_supersession_revokes_the_predecessor_once() -> None:
    job = Job()
    job.store.put_certificate(certificate_record("01", not_after=NOW + timedelta(days=90)))
    job.store.put_certificate(
        certificate_record("02", not_after=NOW + timedelta(days=180)), renewal=Renewal("01", NOW + timedelta(hours=24))
    )
    assert job.job.run(NOW + timedelta(hours=23)).superseded == []
    assert job.job.run(NOW + timedelta(hours=25)).superseded == ["01"]
    assert job.job.run(NOW + timedelta(hours=26)).superseded == []
    revoked = job.store.get_certificate("01")
    assert revoked is not None and (revoked.status, revoked.revocation_reason) == (STATUS_REVOKED, "superseded")
    superseded = [e.detail["serial_number"] for e in job.events.events if e.detail_type == "Certificate Superseded"]
    assert superseded == ["01"]
