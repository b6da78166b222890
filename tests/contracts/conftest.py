"""Every contract test runs once per state store."""

from __future__ import annotations

import pytest

from tests.contracts.stores import JOB_STORES, LEDGER_STORES, PERSISTENT, STORES


async def _open(name, tmp_path, request):
    made = STORES[name](tmp_path, request)
    yield made
    result = made.close()
    if hasattr(result, "__await__"):
        await result


def _store_fixture(names: frozenset[str] | dict) -> object:
    """A fixture that runs each test once per named store."""

    @pytest.fixture(params=sorted(names))
    async def fixture(request, tmp_path):
        async for made in _open(request.param, tmp_path, request):
            yield made

    return fixture


store = _store_fixture(STORES)
persistent_store = _store_fixture(PERSISTENT)
job_store = _store_fixture(JOB_STORES)
ledger_store = _store_fixture(LEDGER_STORES)
