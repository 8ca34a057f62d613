"""End-to-end test of `agnt mcp` through the official Python MCP SDK.

Usage: python3 tests/py/e2e.py <agnt binary>

The caller sets AGNT_SOCKET and AGNT_STATE_DIR to a temp dir (the Rust test that drives this
does), so the daemon this starts is private to the test; the script stops it at the end.
Connects twice: once with the SDK's default negotiation (server/discover probe), once forcing
the legacy initialize handshake. Exits non-zero with a message on the first failed check.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
except ImportError as e:  # pragma: no cover
    print(f"the Python MCP SDK is not importable ({e}); pip install mcp==2.3.0", file=sys.stderr)
    sys.exit(2)

import jsonschema

AGNT = sys.argv[1]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def structured(result):
    check(not result.is_error, f"tool error: {result.content}")
    check(result.structured_content is not None, "structuredContent missing")
    check(len(result.content) == 1 and result.content[0].type == "text", "expected one text content")
    return result.structured_content


async def flow(project, mode):
    params = StdioServerParameters(command=AGNT, args=["mcp"], cwd=project, env=dict(os.environ))
    async with Client(params, mode=mode, read_timeout_seconds=60) as client:
        check(client.server_info.name == "agnt", f"server name {client.server_info}")
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        check({"detect", "run", "proc", "proxy", "proxylog", "currentpage", "wait", "daemon"} <= names, f"tools {names}")
        for t in tools.tools:
            jsonschema.Draft202012Validator.check_schema(t.input_schema)
            jsonschema.Draft202012Validator.check_schema(t.output_schema)
            check("Example" in (t.description or ""), f"{t.name} description has no example")

        det = structured(await client.call_tool("detect", {}))
        check(det["type"] == "python", f"detect type {det['type']}")

        pid_name = f"web-{mode}"
        run = structured(await client.call_tool("run", {
            "raw": True, "command": sys.executable,
            "args": ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"], "id": pid_name,
        }))
        check(run["process_id"] == pid_name, f"run {run}")

        waited = structured(await client.call_tool("wait", {
            "for": "log", "process_id": pid_name, "pattern": r"port \d+", "timeout": 30}))
        check(waited["matched"], f"wait {waited}")
        port = int(re.search(r"port (\d+)", waited["line"]).group(1))

        out = structured(await client.call_tool("proc", {
            "action": "output", "process_id": pid_name, "grep": "Serving", "tail": 1}))
        check("Serving HTTP" in out["output"] and out["lines"] == 1, f"output {out}")

        proxy_id = f"app-{mode}"
        px = structured(await client.call_tool("proxy", {
            "action": "start", "id": proxy_id, "target_url": f"http://127.0.0.1:{port}", "port": 0}))
        url = px["url"]
        body = urllib.request.urlopen(url + "/", timeout=10).read().decode()
        check("Directory listing" in body, "proxied page")
        try:
            urllib.request.urlopen(url + "/missing-page", timeout=10)
        except urllib.error.HTTPError as e:
            check(e.code == 404, f"status {e.code}")

        q = structured(await client.call_tool("proxylog", {"proxy_id": proxy_id, "types": ["http"]}))
        check(q["count"] >= 2, f"query {q}")
        first = q["entries"][0]
        check(isinstance(first["data"], dict), "entry data is an object, not a JSON string")
        q404 = structured(await client.call_tool("proxylog", {"proxy_id": proxy_id, "status_codes": [404]}))
        check(q404["count"] == 1 and q404["entries"][0]["data"]["url"].endswith("/missing-page"), f"404 query {q404}")
        summ = structured(await client.call_tool("proxylog", {"proxy_id": proxy_id, "action": "summary"}))
        check(summ["http_count"] >= 2, f"summary {summ}")

        # Bad input comes back as an error result naming the fix.
        bad = await client.call_tool("proc", {"action": "status", "process_id": "nope"})
        check(bad.is_error and pid_name in bad.content[0].text, f"unknown id message {bad.content}")
        bad = await client.call_tool("proc", {"action": "fly"})
        check(bad.is_error and "list, status, output" in bad.content[0].text, f"bad action {bad.content}")

        stop = structured(await client.call_tool("proc", {"action": "stop", "process_id": pid_name}))
        check(stop["success"], f"stop {stop}")
        st = structured(await client.call_tool("proc", {"action": "status", "process_id": pid_name}))
        check(st["state"] in ("stopped", "failed"), f"state {st}")
        structured(await client.call_tool("proxy", {"action": "stop", "id": proxy_id}))
        return client.protocol_version


def http_token(port):
    """The HTTP face's bearer token, as `agnt daemon info --json` shows it; checks that a
    request without it is refused."""
    out = subprocess.run([AGNT, "daemon", "info", "--json"], check=True, capture_output=True, text=True, timeout=30)
    face = json.loads(out.stdout)["http"]
    check(face["url"] == f"http://127.0.0.1:{port}/mcp", f"http face {face}")
    req = urllib.request.Request(face["url"], data=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}', method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        check(False, "an unauthenticated POST /mcp was accepted")
    except urllib.error.HTTPError as e:
        check(e.code == 401, f"unauthenticated POST /mcp: {e.code}")
    return face["token"]


async def http_flow(port, mode, token):
    """The daemon's Streamable HTTP face (`POST /mcp`) through the SDK's HTTP client, with the
    bearer token (as docs/mcp.md tells users to configure it)."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    transport = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
    async with Client(transport, mode=mode, read_timeout_seconds=30) as client:
        tools = await client.list_tools()
        check(len(tools.tools) == 12, f"http tools {len(tools.tools)}")
        info = structured(await client.call_tool("daemon", {"action": "info"}))
        check(info["running"], f"http info {info}")
        return client.protocol_version


async def main():
    with tempfile.TemporaryDirectory() as project:
        with open(os.path.join(project, "pyproject.toml"), "w") as f:
            f.write('[project]\nname = "demo"\nversion = "0.1.0"\n')
        auto_version = await flow(project, "auto")
        legacy_version = await flow(project, "legacy")
        result = {"ok": True, "auto": auto_version, "legacy": legacy_version}
        port = os.environ.get("AGNT_HTTP_PORT")
        if port:
            token = http_token(port)
            result["http_auto"] = await http_flow(port, "auto", token)
            result["http_legacy"] = await http_flow(port, "legacy", token)
        print(json.dumps(result))
    subprocess.run([AGNT, "daemon", "stop"], check=True, capture_output=True, timeout=30)


if __name__ == "__main__":
    t = time.time()
    asyncio.run(main())
    print(f"e2e passed in {time.time() - t:.1f}s", file=sys.stderr)
