"""Downloads end by an overall deadline and, failing, say where to put the archive instead
(issue 15, item 12)."""

from __future__ import annotations

import socket
import time
from http.server import BaseHTTPRequestHandler

import pytest

from oneshot.data import archives
from oneshot.data import omniglot as og
from oneshot.data.dataset import DataError
from oneshot.data.download import DownloadError, download

# ---- 12. downloads: overall deadline, no network -----------------------------------------

TRICKLE_S = 6.0  # a trickling server gives up by itself after this long


@pytest.fixture
def trickle_server(http_server):
    """A local server that sends its headers (or only its status line) one byte per 0.1 s."""
    def start(where: str) -> str:
        class Trickle(BaseHTTPRequestHandler):
            def do_GET(self):
                head = b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n"
                try:
                    if where == "body":
                        self.wfile.write(head)
                    t_end = time.monotonic() + TRICKLE_S
                    for b in (head if where == "headers" else b"x" * 1000):
                        if time.monotonic() > t_end:
                            break
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass  # the client hung up

            def log_message(self, *a):
                pass

        return http_server(Trickle)

    return start


@pytest.mark.parametrize("where", ["body", "headers"])
def test_download_deadline_stops_a_trickle(tmp_path, trickle_server, monkeypatch, where):
    monkeypatch.setenv("ONESHOT_DOWNLOAD_TIMEOUT", "1")
    url = trickle_server(where)
    target = tmp_path / "a.zip"
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"did not finish within its deadline of 1 s"):
        download(f"{url}/a.zip", target)
    assert time.monotonic() - t0 < 3.0
    assert list(tmp_path.iterdir()) == []  # no target, no temporary file


def _refused_url() -> str:
    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_no_network_is_a_data_error_that_says_where_to_put_the_archive(tmp_path, monkeypatch):
    monkeypatch.delenv("ONESHOT_DATA", raising=False)
    url = _refused_url()
    with pytest.raises(DataError) as err:
        og.find_archive("small1", None, tmp_path / "cache", base_url=url)
    msg = str(err.value)
    assert isinstance(err.value, DownloadError) and isinstance(err.value, OSError)
    for part in (f"{url}/images_background_small1.zip", og.ARCHIVES["small1"].url,
                 "--data-dir", "$ONESHOT_DATA", str(tmp_path / "cache" / "archives")):
        assert part in msg


def test_cli_data_without_network_prints_an_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    from oneshot import cli

    monkeypatch.delenv("ONESHOT_DATA", raising=False)
    monkeypatch.setattr(archives, "OFFICIAL_URL", _refused_url() + "/{name}")
    assert cli.main(["data", "--split", "small1", "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "error: download of" in err and "$ONESHOT_DATA" in err and "Traceback" not in err


def test_bad_download_timeout_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("ONESHOT_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(DataError, match="ONESHOT_DOWNLOAD_TIMEOUT='soon' is not a number"):
        download("http://127.0.0.1:9/x", tmp_path / "x")


