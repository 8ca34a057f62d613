"""The agent drives the page itself: `proxy` + `browser` + `snapshot` end to end through the
official Python MCP SDK, with no page opened by the test.

Usage: python3 tests/py/browser_e2e.py <agnt binary>

The caller sets AGNT_SOCKET and AGNT_STATE_DIR to a temp dir (tests/it/browser_tool.rs does), so
the daemon this starts is private; the script stops it at the end. The upstream is a small
http.server in this process. Exits non-zero with a message on the first failed check.
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters
except ImportError as e:  # pragma: no cover
    print(f"the Python MCP SDK is not importable ({e}); pip install mcp==2.3.0", file=sys.stderr)
    sys.exit(2)

AGNT = sys.argv[1]

PAGE = """<!doctype html><html><head><title>shop</title>
<meta name="viewport" content="width=device-width">
<style>body { margin: 0; font: 16px sans-serif; background: #fff; } HERO</style></head>
<body><div id="hero"></div><h1>Shop</h1>
<button id="buy" onclick="document.getElementById('out').textContent = 'bought'">Buy now</button>
<button id="warn" onclick="alert('careful'); document.getElementById('out').textContent = 'alerted'">Warn me</button>
<p id="out"></p>
<form method="post" action="/search"><input name="q" placeholder="Search"></form>
<script>setTimeout(function boom() { throw new Error('agnt-e2e-page-boom'); }, 50);</script>
</body></html>"""


class App:
    """The upstream dev server: its CSS can change; it records the form posts."""

    def __init__(self):
        self.hero = "#hero { height: 120px; background: #2a6; }"
        self.posts = []
        self.posted = threading.Event()
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, body):
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/":
                    self.send(PAGE.replace("HERO", app.hero))
                else:
                    self.send_error(404)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                app.posts.append((self.path, self.rfile.read(n).decode()))
                app.posted.set()
                self.send("<!doctype html><title>results</title><p>results</p>")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def structured(result):
    check(not result.is_error, f"tool error: {result.content}")
    return result.structured_content


def png_pixels(path):
    """(width, height, set of RGB triples) of an 8-bit RGB/RGBA PNG."""
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    i, idat = 8, b""
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        kind, body = data[i + 4:i + 8], data[i + 8:i + 8 + n]
        if kind == b"IHDR":
            w, h, ctype = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big"), body[9]
        elif kind == b"IDAT":
            idat += body
        i += 12 + n
    bpp = 4 if ctype == 6 else 3
    raw, stride = zlib.decompress(idat), w * bpp
    prev, colours = bytearray(stride), set()
    for y in range(h):
        f, cur = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1:
                cur[x] = (cur[x] + a) & 255
            elif f == 2:
                cur[x] = (cur[x] + b) & 255
            elif f == 3:
                cur[x] = (cur[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[x] = (cur[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 10 == 0:
            colours.update(bytes(cur[k:k + 3]) for k in range(0, stride, bpp * 10))
        prev = cur
    return w, h, colours


def group_pids(pgid):
    """Live (non-zombie) processes of process group `pgid`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(d))
    return out


def listening_sockets(pids):
    """TCP listening sockets (inodes, from /proc/net/tcp and tcp6) held by `pids`."""
    listening = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(f).read().splitlines()[1:]:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A":
                listening.add(cols[9])
    held = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
                if t.startswith("socket:["):
                    held.add(t[8:-1])
        except OSError:
            pass
    return held & listening


async def flow(project, app):
    params = StdioServerParameters(command=AGNT, args=["mcp"], cwd=project, env=dict(os.environ))
    async with Client(params, read_timeout_seconds=120) as client:
        async def tool(name, args):
            return structured(await client.call_tool(name, args))

        await tool("proxy", {"action": "start", "id": "shop", "target_url": app.url, "port": 0})
        st = await tool("browser", {"action": "start", "proxy_id": "shop"})
        check(st["page"]["title"] == "shop", f"browser start {st}")
        pid = st["pid"]
        pids = group_pids(pid)
        check(pids, f"no chromium process in group {pid}")
        check(not listening_sockets(pids), "chromium listens on a TCP port")

        # The page's own JS error reaches the proxy's log.
        w = await tool("wait", {"for": "proxylog", "proxy_id": "shop", "types": ["error"], "since": 0, "timeout": 30})
        check(w["matched"], f"no error entry: {w}")
        errs = await tool("proxylog", {"proxy_id": "shop", "types": ["error"]})
        check(any("agnt-e2e-page-boom" in e["data"].get("message", "") for e in errs["entries"]), f"errors {errs}")

        # Click by text; the interaction entry names the button.
        c = await tool("browser", {"action": "click", "proxy_id": "shop", "text": "Buy now"})
        check(c["hit"]["tag"] == "button" and c["hit"]["selector"] == "#buy", f"click {c}")
        w = await tool("wait", {"for": "proxylog", "proxy_id": "shop", "types": ["interaction"], "since": 0, "timeout": 30})
        check(w["matched"], f"no interaction entry: {w}")
        inter = await tool("proxylog", {"proxy_id": "shop", "types": ["interaction"]})
        check(any(e["data"].get("target") == "#buy" for e in inter["entries"]), f"interactions {inter}")

        # fill + Enter submits the form: the upstream sees the POST.
        await tool("browser", {"action": "fill", "proxy_id": "shop", "selector": "input[name=q]", "value": "red shoes"})
        await tool("browser", {"action": "press", "proxy_id": "shop", "key": "Enter"})
        check(await asyncio.to_thread(app.posted.wait, 30), "the form was not posted")
        check(("/search", "q=red+shoes") in app.posts, f"posts {app.posts}")
        await tool("browser", {"action": "navigate", "proxy_id": "shop", "url": "/"})

        # A screenshot: a PNG of the viewport with real pixels.
        shot = await tool("browser", {"action": "screenshot", "proxy_id": "shop"})
        w_, h_, colours = png_pixels(shot["path"])
        check((w_, h_) == (shot["width"], shot["height"]) == (1280, 800), f"screenshot {shot}")
        check(len(colours) > 2 and b"\x22\xaa\x66" in colours, f"blank screenshot: {len(colours)} colours")

        # Resize: the page sees it (through proxy exec).
        await tool("browser", {"action": "resize", "proxy_id": "shop", "preset": "mobile"})
        iw = await tool("proxy", {"action": "exec", "id": "shop", "code": "innerWidth"})
        check(iw["result"] == 390, f"innerWidth {iw}")

        # An alert does not block the next click.
        await tool("browser", {"action": "click", "proxy_id": "shop", "text": "Warn me"})
        c = await tool("browser", {"action": "click", "proxy_id": "shop", "text": "Buy now"})
        check(c["hit"]["selector"] == "#buy", f"click after alert {c}")
        out = await tool("proxy", {"action": "exec", "id": "shop", "code": "document.getElementById('out').textContent"})
        check(out["result"] == "bought", f"after alert {out}")
        log = await tool("browser", {"action": "console", "proxy_id": "shop"})
        check(any(e["level"] == "dialog" and "careful" in e["text"] for e in log["entries"]), f"console {log}")

        # Snapshot: a CSS change on the upstream is found, in the hero's box only.
        await tool("browser", {"action": "resize", "proxy_id": "shop", "preset": "desktop"})
        base = await tool("snapshot", {"action": "baseline", "name": "home", "pages": ["/"], "proxy_id": "shop"})
        check(base["pages"][0]["width"] == 1440, f"baseline {base}")
        app.hero = "#hero { height: 120px; background: #c33; }"
        cmp = await tool("snapshot", {"action": "compare", "baseline": "home", "proxy_id": "shop"})
        page = cmp["pages"][0]
        check(not cmp["pass"] and page["changed_fraction"] > 0.01, f"compare {cmp}")
        check(page["regions"] == [{"x": 0, "y": 0, "width": 1440, "height": 120}], f"regions {page['regions']}")
        check(os.path.exists(page["diff_path"]), "no diff image")

        # Stop: no Chromium process is left.
        await tool("browser", {"action": "stop", "proxy_id": "shop"})
        left = group_pids(pid)
        check(not left, f"chromium left behind: {left}")
        await tool("proxy", {"action": "stop", "id": "shop"})
        return {"ok": True, "changed_fraction": page["changed_fraction"]}


async def main():
    app = App()
    with tempfile.TemporaryDirectory() as project:
        try:
            result = await flow(project, app)
        finally:
            subprocess.run([AGNT, "daemon", "stop"], capture_output=True, timeout=30)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
