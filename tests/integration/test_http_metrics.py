"""GET /metrics over real HTTP: counts, errors, latency, images, spend and jobs in flight, readable without a
token and free of owners, prompts and tokens."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpt_image_2_mcp.adapters.tokens_file_verifier import new_token
from tests.conftest import make_container
from tests.http_harness import bound_socket, client_with_token, http, serve_http


@pytest.fixture
def sock():
    listening = bound_socket()
    yield listening
    listening.close()


def samples(page: bytes) -> dict[tuple[str, tuple], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(page.decode()) for sample in family.samples}


async def test_metrics_count_calls_errors_latency_images_and_spend_without_naming_anyone(tmp_path, sock):
    token, line = new_token("secret-sam")
    (tmp_path / "tokens").write_text(line + "\n")
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://",
                               transport="http", http_port=sock.getsockname()[1],
                               auth_tokens_file=str(tmp_path / "tokens"))
    async with serve_http(container, sock) as served:
        before = samples((await http(f"{served.base}/metrics")).body)
        async with client_with_token(served.mcp_url, token) as client:
            await client.call_tool("generate_image", {"prompt": "a hidden prompt", "n": 2, "inline": "none"})
            await client.call_tool("generate_image", {"prompt": "x", "size": "5000x5000"})
            await client.call_tool("list_edit_sessions", {})
            await client.call_tool("no_such_tool", {})
        answer = await http(f"{served.base}/metrics")
    after = samples(answer.body)
    generate = (("tool", "generate_image"),)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain")
    assert before.get(("gpt_image_2_tool_calls_total", generate), 0) == 0
    assert after[("gpt_image_2_tool_calls_total", generate)] == 2
    assert after[("gpt_image_2_tool_errors_total", generate)] == 1
    assert after[("gpt_image_2_tool_call_duration_seconds_count", generate)] == 2
    assert after[("gpt_image_2_tool_calls_total", (("tool", "list_edit_sessions"),))] == 1
    assert after[("gpt_image_2_tool_errors_total", (("tool", "other"),))] == 1  # no label minted by callers
    assert after[("gpt_image_2_images_total", ())] == 2
    assert after[("gpt_image_2_estimated_spend_usd_total", ())] > 0
    assert after[("gpt_image_2_jobs_finished_total", (("outcome", "completed"),))] == 1
    assert after[("gpt_image_2_jobs_finished_total", (("outcome", "error"),))] == 1
    assert after[("gpt_image_2_jobs_in_flight", ())] == 0
    page = answer.body.decode()
    for secret in ("secret-sam", token, "hidden prompt", "no_such_tool", str(tmp_path)):
        assert secret not in page
