"""The package's public face stays in step: pyproject.toml, server.json (the MCP registry entry), the README's
configuration table, the settings the server really reads, and __version__."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from gpt_image_2_mcp import __version__
from gpt_image_2_mcp.entrypoints.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"`((?:GPT_IMAGE_2|OPENAI)_[A-Z0-9_]+)`")
REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")  # the registry schema's pattern


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.fixture(scope="module")
def server_json() -> dict:
    return json.loads((ROOT / "server.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def package(server_json) -> dict:
    (package,) = server_json["packages"]
    return package


def readme_table() -> dict[str, str]:
    """Each variable of the README's configuration table, with the first cell after its name (its default)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for name in VARIABLE.findall(cells[0]):
            table[name] = cells[1]
    return table


def settings_variables() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        names.update(str(choice) for choice in field.validation_alias.choices)  # type: ignore[union-attr]
    return names


def test_server_json_names_the_same_package_version_and_description_as_pyproject(project, server_json, package):
    assert server_json["version"] == package["version"] == project["version"] == __version__
    assert package["identifier"] == project["name"]
    assert server_json["description"] == project["description"]


def test_server_json_has_the_registry_shape(server_json, package):
    assert server_json["$schema"].startswith("https://static.modelcontextprotocol.io/schemas/")
    assert REGISTRY_NAME.match(server_json["name"]) and server_json["name"].startswith("io.github.")
    assert 1 <= len(server_json["description"]) <= 100  # the registry refuses longer descriptions
    assert (package["registryType"], package["registryBaseUrl"]) == ("pypi", "https://pypi.org")
    assert package["transport"] == {"type": "stdio"}
    assert package["version"] != "latest" and re.fullmatch(r"\d+\.\d+\.\d+", package["version"])
    for variable in package["environmentVariables"]:
        assert set(variable) <= {"name", "description", "isRequired", "isSecret", "default", "choices", "format"}
        assert variable["description"] and isinstance(variable["isSecret"], bool)
        assert "default" not in variable or isinstance(variable["default"], str)
        assert variable.get("default") in (None, *variable.get("choices", [variable.get("default")]))


def test_the_readme_proves_to_the_registry_that_the_pypi_package_is_this_server(server_json):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"mcp-name: {server_json['name']}" in readme


def test_every_variable_in_the_readme_table_is_in_server_json_and_back(package):
    listed = [variable["name"] for variable in package["environmentVariables"]]
    assert len(listed) == len(set(listed)), "a variable is listed twice in server.json"
    table = readme_table()
    assert len(table) >= 20  # the parse found the table, not an empty section
    assert set(listed) - set(table) == set(), "in server.json but not in the README table"
    assert set(table) - set(listed) == set(), "in the README table but not in server.json"


def test_every_listed_variable_is_one_the_server_reads(package):
    listed = {variable["name"] for variable in package["environmentVariables"]}
    assert listed - settings_variables() == set()


def test_server_json_defaults_match_the_readme(package):
    table = readme_table()
    for variable in package["environmentVariables"]:
        if "default" in variable:
            assert table[variable["name"]] == f"`{variable['default']}`", variable["name"]


def test_the_api_key_is_secret_and_nothing_is_required(package):
    by_name = {variable["name"]: variable for variable in package["environmentVariables"]}
    assert by_name["OPENAI_API_KEY"]["isSecret"] is True
    # A Redis URL can carry a password; every other variable is plain configuration.
    assert {name for name, v in by_name.items() if v["isSecret"]} == {"OPENAI_API_KEY", "GPT_IMAGE_2_STATE_URL"}
    # Without a key the server runs its offline fake backend: no variable is required to start it.
    assert not any(v["isRequired"] for v in by_name.values())


def test_pyproject_declares_an_spdx_license_with_its_file(project):
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License") and "Copyright (c) 2026 gpt-image-2-mcp contributors" in license_text
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(project["urls"])
    tested = {f"Programming Language :: Python :: 3.{minor}" for minor in (11, 12, 13)}
    assert tested <= set(project["classifiers"])
