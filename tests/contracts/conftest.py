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


@pytest.fixture(params=sorted(STORES))
async def store(request, tmp_path):
    async for made in _open(request.param, tmp_path, request):
        yield made


@pytest.fixture(params=sorted(PERSISTENT))
async def persistent_store(request, tmp_path):
    async for made in _open(request.param, tmp_path, request):
        yield made


@pytest.fixture(params=sorted(JOB_STORES))
async def job_store(request, tmp_path):
    async for made in _open(request.param, tmp_path, request):
        yield made


@pytest.fixture(params=sorted(LEDGER_STORES))
async def ledger_store(request, tmp_path):
    async for made in _open(request.param, tmp_path, request):
        yield made
