"""Fixtures of the data tests."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest


@pytest.fixture
def http_server():
    """start(handler class) -> the URL of a local server (127.0.0.1 only) serving it on
    daemon threads; every server is shut down after the test."""
    servers = []

    def start(handler) -> str:
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()
