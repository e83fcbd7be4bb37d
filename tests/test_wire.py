"""kmsca.wire against pydantic: the request models validate exactly as the pydantic models they
replaced (strict, extra="forbid", frozen) did, with the same errors (type, location, message) in
the same order, and dump the same values.

The reference models are built with pydantic from the wire models' own declarations (the same
annotations and constraints), so every model and field the handlers use is compared, including
ones added later. pydantic stays a development dependency for this test only.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from kmsca.models import IssueRequest, ListRequest, SanModel, ShowRequest, SubjectFields, parse_request
from kmsca.revocation import RevokeRequest
from kmsca.wire import _MISSING, WireError, WireModel
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError, create_model
from pydantic import Field as PydanticField

MODELS = (SubjectFields, SanModel, IssueRequest, ShowRequest, ListRequest, RevokeRequest)
_reference: dict[type, type[BaseModel]] = {}


def _pydantic_type(hint: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        return Union[tuple(_pydantic_type(a) for a in get_args(hint))]  # noqa: UP007
    if origin is list:
        return list[_pydantic_type(get_args(hint)[0])]  # type: ignore[misc]
    if origin is Literal:
        return hint
    if isinstance(hint, type) and issubclass(hint, WireModel):
        return reference(hint)
    return {str: StrictStr, int: StrictInt, type(None): type(None)}[hint]


def reference(model: type[WireModel]) -> type[BaseModel]:
    """The pydantic model with the same declarations."""
    if model not in _reference:
        fields = {}
        for name, hint, field in model._declared():
            constraints = {
                key: getattr(field, key)
                for key in ("min_length", "max_length", "pattern", "ge", "le")
                if getattr(field, key) is not None
            }
            default = ... if field.default is _MISSING else field.default
            fields[name] = (_pydantic_type(hint), PydanticField(default, **constraints))
        config = ConfigDict(extra="forbid", frozen=True, strict=True)
        _reference[model] = create_model(model.__name__, __config__=config, **fields)  # type: ignore[call-overload]
    return _reference[model]


def outcome(model: type, data: Any) -> tuple[str, Any]:
    validate = model.model_validate
    try:
        result = validate(data)
    except (ValidationError, WireError) as exc:
        return "error", [(e["type"], tuple(e["loc"]), e["msg"]) for e in exc.errors()]
    # request_hash (idempotency) hashes model_dump(exclude={"idempotency_key"}, exclude_none=True)
    return "ok", (result.model_dump(), result.model_dump(exclude={"idempotency_key"}, exclude_none=True))


S = "x"
CORPUS: dict[type, list[Any]] = {
    SubjectFields: [
        {}, {"common_name": "a"}, {"common_name": None}, {"common_name": 1}, {"country": True}, {"unknown": "x"},
        {"email_address": ["a"]}, {"b": 1, "common_name": 2, "a": 3}, {"organization": "Exämple ✓"},
    ],
    SanModel: [
        {}, {"type": "dns"}, {"type": "dns", "value": "a"}, {"type": 1, "value": "v" * 2049}, {"type": "dns", "value": "v" * 2048},
        {"type": "dns", "value": None}, {"type": "dns", "value": "a", "x": 1},
    ],
    IssueRequest: [
        {}, {"csr": S}, {"csr": 5}, {"csr": None}, {"csr": "c" * 32769}, {"csr": "c" * 32768}, {"profile": None},
        {"profile": 1}, {"lifetime_days": True}, {"lifetime_days": 1.0}, {"lifetime_days": "30"}, {"lifetime_days": 30},
        {"lifetime_days": -5}, {"idempotency_key": ""}, {"idempotency_key": "a" * 129}, {"idempotency_key": "a" * 128},
        {"idempotency_key": "a b"}, {"idempotency_key": "abc\n"}, {"idempotency_key": "ab" * 70 + " "},
        {"idempotency_key": "ünïcode"}, {"requested_by": ""}, {"requested_by": "arn:aws:sts::1:assumed-role/x y"},
        {"requested_by": "tab\there"}, {"requested_by": "r" * 257}, {"renews": "ab" * 40}, {"renews": ""},
        {"revoke_renewed_after_hours": -1}, {"revoke_renewed_after_hours": 0}, {"revoke_renewed_after_hours": 8760},
        {"revoke_renewed_after_hours": 8761}, {"revoke_renewed_after_hours": False}, {"subject": "x"},
        {"subject": None}, {"subject": {}}, {"subject": {"x": 1, "common_name": 3}}, {"subject": {"common_name": "a"}},
        {"sans": None}, {"sans": []}, {"sans": {"type": "dns"}}, {"sans": ("a",)}, {"sans": "dns:a"},
        {"sans": [{"type": "dns"}, "x", {"type": 1, "value": "v" * 3000, "q": 1}]},
        {"sans": [{"type": "dns", "value": "a"}, {"type": "ip", "value": "10.0.0.1"}]},
        {"zzz": 1, "csr": 5, "aaa": 2, "lifetime_days": True}, {"key_type": "k" * 33}, {"key_type": "ec-p256"},
        {"csr": S, "profile": "server", "key_type": None, "subject": {"common_name": "a", "country": "DE"},
         "sans": [{"type": "dns", "value": "a.example.com"}], "lifetime_days": 30, "idempotency_key": "k-1",
         "requested_by": "me", "renews": "0a", "revoke_renewed_after_hours": 24},
    ],
    ShowRequest: [{}, {"operation": "show"}, {"operation": "show", "serial_number": ""}, {"operation": 1, "serial_number": "0a"},
                  {"operation": "show", "serial_number": "0a", "x": None}],
    ListRequest: [
        {"operation": "list"}, {}, {"operation": "list", "status": "x", "page_size": 0}, {"status": 5},
        {"operation": "list", "status": "issued"}, {"operation": "list", "status": None}, {"operation": "list", "status": "Issued"},
        {"operation": "list", "page_size": 101}, {"operation": "list", "page_size": 100, "next_token": "t"},
        {"operation": "list", "name_contains": ""}, {"operation": "list", "expiring_before": "2027-01-01T00:00:00Z"},
    ],
    RevokeRequest: [{}, {"serial_number": "0a"}, {"serial_number": 10}, {"serial_number": "0a", "reason": None},
                    {"serial_number": "a" * 129}, {"serial_number": "0a", "invalidity_date": 5}, {"serial_number": "0a", "q": 1}],
}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_the_corpus_validates_as_pydantic_did(model: type) -> None:
    for data in CORPUS[model]:
        assert outcome(model, data) == outcome(reference(model), data), data


@pytest.mark.parametrize("data", [None, [], "x", 1])
def test_a_request_that_is_no_object_is_refused_like_pydantic(data: Any) -> None:
    assert outcome(IssueRequest, data) == outcome(reference(IssueRequest), data)


def test_models_are_frozen_and_compare_by_value() -> None:
    request = IssueRequest.model_validate({"csr": "x", "subject": {"common_name": "a"}})
    with pytest.raises(TypeError):
        request.csr = "y"  # type: ignore[misc]
    assert request == IssueRequest(csr="x", subject={"common_name": "a"})
    assert request.subject == SubjectFields(common_name="a") and request.subject.overrides() == {"common_name": "a"}
    assert request.model_dump(exclude={"csr"}, exclude_none=True) == {"profile": "client", "subject": {"common_name": "a"}}


def test_the_handlers_errors_are_unchanged() -> None:
    """parse_request turns the first error into the field's domain error, message included."""
    cases = {
        "InvalidLifetime": ({"csr": "x", "lifetime_days": "30"}, "lifetime_days: Input should be a valid integer"),
        "InvalidRequest": ({"csr": "x", "idempotency_key": "a b"},
                           "idempotency_key: String should match pattern '^[\\x21-\\x7e]+$'"),
        "InvalidSubjectAlternativeName": ({"sans": [{"type": "dns"}]}, "sans.0.value is required"),
        "InvalidSubject": ({"subject": {"cn": "x"}}, "subject.cn is not a field of this request"),
        "InvalidCsr": ({"csr": "c" * 40000}, "csr is larger than 32768 bytes"),
    }
    for code, (event, message) in cases.items():
        with pytest.raises(Exception) as refused:
            parse_request(IssueRequest, event)
        assert (refused.value.code, refused.value.message) == (code, message)  # type: ignore[attr-defined]
