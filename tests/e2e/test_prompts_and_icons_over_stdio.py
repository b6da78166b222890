"""Prompts and icons from the installed console script, over stdio, as an MCP client sees them."""

from __future__ import annotations

import base64
import json
import re

import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from tests.e2e.conftest import RawServer, stdio_client

SVG_DATA = "data:image/svg+xml;base64,"


def svg_of(icon) -> bytes:
    assert icon.src.startswith(SVG_DATA) and icon.mime_type == "image/svg+xml"
    return base64.b64decode(icon.src[len(SVG_DATA):], validate=True)


async def test_prompts_list_and_get_over_stdio_name_the_tool_and_its_settings(tmp_path):
    async with stdio_client(tmp_path) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        result = await client.get_prompt("local_edit", {"image": str(tmp_path / "room.png"),
                                                        "change": "turn the lamp on"})
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("infographic", {"topic": "tides"})
    assert {"product_shot", "logo", "infographic", "photoreal_portrait", "local_edit",
            "consistent_character"} <= set(prompts)
    assert [a.name for a in prompts["local_edit"].arguments if a.required] == ["image", "change"]
    text = result.messages[0].content.text
    tool, arguments = re.search(r"Call `(\w+)` with these arguments:\n```json\n(.*?)\n```", text, re.S).groups()
    assert tool == "edit_image"
    assert json.loads(arguments)["images"] == [str(tmp_path / "room.png")]
    assert missing.value.code == INVALID_PARAMS
    assert "Prompt infographic needs `exact_text`" in missing.value.message


async def test_the_server_and_every_tool_show_an_svg_icon_over_stdio(tmp_path):
    async with stdio_client(tmp_path) as client:
        server_icons = client.server_info.icons
        tools = (await client.list_tools()).tools
    assert svg_of(server_icons[0]).startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')
    assert all(svg_of(tool.icons[0]).endswith(b"</svg>") for tool in tools)


def test_a_bad_prompt_request_is_a_json_rpc_error_and_stdout_stays_json_rpc(tmp_path):
    server = RawServer(tmp_path)  # every line it reads from stdout must parse as JSON, or the test fails
    try:
        bad = server.request("prompts/get", {"name": "logo", "arguments": {"brand": "N", "business": "b",
                                                                            "variations": "many"}})
        good = server.request("prompts/get", {"name": "logo", "arguments": {"brand": "N", "business": "b"}})
    finally:
        server.close()
    assert bad["error"]["code"] == INVALID_PARAMS
    assert "`variations` was 'many'; it must be a whole number" in bad["error"]["message"]
    assert "generate_image" in good["result"]["messages"][0]["content"]["text"]
