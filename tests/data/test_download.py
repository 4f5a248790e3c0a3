"""The data layer on the real archives, and every error path on synthetic files."""

from __future__ import annotations

import hashlib
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler

import pytest

from oneshot.data import omniglot as og
from oneshot.data.download import DownloadError, download


def test_download_verifies_md5(tmp_path, data_dir, http_server, monkeypatch):
    monkeypatch.delenv("ONESHOT_DATA", raising=False)
    handler = partial(SimpleHTTPRequestHandler, directory=str(data_dir))
    handler.log_message = lambda *a: None
    url = http_server(handler)
    cache = tmp_path / "cache"
    path = og.find_archive("small1", None, cache, base_url=url)
    assert path == cache / "archives" / "images_background_small1.zip"
    assert hashlib.md5(path.read_bytes()).hexdigest() == og.ARCHIVES["small1"].md5
    assert og.load_archive("small1", None, cache).counts()["images"] == 2720
    # present: not downloaded again (the server is gone for this call)
    assert og.find_archive("small1", None, cache, base_url="http://127.0.0.1:9") == path


def test_download_md5_mismatch_leaves_nothing(tmp_path, data_dir, http_server):
    handler = partial(SimpleHTTPRequestHandler, directory=str(data_dir))
    handler.log_message = lambda *a: None
    url = http_server(handler)
    target = tmp_path / "x.zip"
    with pytest.raises(DownloadError, match="MD5"):
        download(f"{url}/images_background_small2.zip", target, md5=og.ARCHIVES["small1"].md5)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_nothing(tmp_path, http_server):
    class Truncating(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)  # then the connection closes

        def log_message(self, *a):
            pass

    url = http_server(Truncating)
    target = tmp_path / "a.zip"
    with pytest.raises(DownloadError):
        download(f"{url}/a.zip", target)
    assert not target.exists() and list(tmp_path.iterdir()) == []
