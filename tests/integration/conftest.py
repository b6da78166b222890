"""Integration fixtures: a fake OpenAI HTTP server on 127.0.0.1 and a container pointed at it."""

from __future__ import annotations

import pytest

from tests.conftest import make_container
from tests.fakes.fake_openai_server import FakeOpenAIServer

TEST_KEY = "sk-test-INTEGRATION-0123456789"


@pytest.fixture
def fake_openai():
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def openai_container(fake_openai, tmp_path):
    return make_container(
        api_key=TEST_KEY,
        base_url=fake_openai.base_url,
        organization="org-test",
        project="proj-test",
        output_dir=str(tmp_path / "out"),
        max_attempts=3,
        retry_max_seconds=5,
    )
