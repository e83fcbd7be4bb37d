"""Fixtures of the handler tests (the functions through ``load_handler``, on moto)."""

from __future__ import annotations

import pytest

from tests.support.aws import FakeContext


@pytest.fixture
def lambda_context() -> FakeContext:
    """The Lambda context a handler receives."""
    return FakeContext()
