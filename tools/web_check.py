#!/usr/bin/env python3
"""Opens a page of this repository in headless Chromium (WebGPU on) and waits for its verdict.

    tools/web_check.py PAGE PATTERN [TIMEOUT_S]

Serves the repository on a free local port, drives Chromium through chromedriver's WebDriver
protocol (CHROMEDRIVER, else `chromedriver` on the PATH), opens PAGE (a path under the
repository, with its query), and waits until `document.title` matches the regular expression
PATTERN (success, exit 0) or starts with `error` or the time runs out (exit 1). Prints the
page's text either way. Only the standard library.
"""

import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROME_ARGS = ["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu",
               "--disable-dev-shm-usage", "--disable-gpu-sandbox"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port):
    handler = functools.partial(QuietHandler, directory=ROOT)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")["value"]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    page, pattern = sys.argv[1], re.compile(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 900
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not driver:
        sys.exit("no chromedriver: apt-get install chromium chromium-driver")
    http_port, driver_port = free_port(), free_port()
    server = serve(http_port)
    proc = subprocess.Popen([driver, f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{driver_port}"
    try:
        for _ in range(100):
            try:
                call(base, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"args": CHROME_ARGS}}}}
        session = call(base, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"
        url = f"http://127.0.0.1:{http_port}/{page}"
        start = time.time()
        call(base, "POST", f"{s}/url", {"url": url})
        title = ""
        while time.time() - start < timeout:
            title = call(base, "GET", f"{s}/title")
            if pattern.search(title) or title.startswith("error"):
                break
            time.sleep(0.5)
        text = call(base, "POST", f"{s}/execute/sync",
                    {"script": "return document.body.innerText", "args": []})
        print(text)
        print(f"title: {title!r} after {time.time() - start:.1f} s")
        call(base, "DELETE", s)
        ok = bool(pattern.search(title))
        if not ok:
            print(f"{page}: the title never matched {pattern.pattern!r}", file=sys.stderr)
        return 0 if ok else 1
    finally:
        proc.terminate()
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
