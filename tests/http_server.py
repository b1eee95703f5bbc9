"""A local HTTP server for the download tests: 127.0.0.1 only, offline.

`FileServer` serves a dict of file names to bytes, answers `Range`
requests (206, as the real servers do) unless told not to, records every
request, and can be told to break: close the connection after `n` bytes
(an interrupted transfer), or answer an error status.

    with FileServer({"a.tar.gz": data}) as server:
        download.fetch(server.url + "/a.tar.gz", folder)
        server.requests  # [("/a.tar.gz", None)]
"""

import http.server
import re
import socket
import threading
import urllib.parse


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # quiet
        pass

    def do_GET(self):
        owner = self.server.owner
        path = urllib.parse.urlsplit(self.path).path
        range_header = self.headers.get("Range")
        owner.requests.append((path, range_header))
        name = path.lstrip("/")
        fault = owner.faults.get(name)
        if fault is not None and fault[0] == "status":
            self.send_error(fault[1])
            return
        if fault is not None and fault[0] == "redirect":
            self.send_response(302)
            self.send_header("Location", fault[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if name not in owner.files:
            self.send_error(404)
            return
        data = owner.files[name]
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if owner.ranges and match:
            start = int(match.group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header(
                "Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"
            )
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if fault is not None and fault[0] == "truncate":
            body = body[: fault[1]]
            self.close_connection = True
        self.wfile.write(body)
        self.wfile.flush()


class FileServer:
    """Serves `files` (`{name: bytes}`) at `url` until the `with` ends.

    Attributes:
        url: `"http://127.0.0.1:<port>"`, without a trailing slash.
        files: what is served; change it at any time.
        requests: `(path, Range header or None)` of each request.
        faults: `{name: ("truncate", n) | ("status", code) |
            ("redirect", url)}`.
        ranges: whether `Range: bytes=N-` requests get the rest (206).
    """

    def __init__(self, files=None):
        self.files = dict(files or {})
        self.requests = []
        self.faults = {}
        self.ranges = True
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), _Handler
        )
        self._server.daemon_threads = True
        self._server.owner = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = None

    def __enter__(self):
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def closed_url():
    """`http://127.0.0.1:<port>` of a port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
