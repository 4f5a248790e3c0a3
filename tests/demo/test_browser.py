"""The browser demo served for real: its address, and one end-to-end run in headless Chromium."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from oneshot import demo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_serve_prints_its_address(app, monkeypatch, capsys):
    import uvicorn

    ran = {}
    monkeypatch.setattr(uvicorn, "run", lambda a, **kw: ran.update(kw, app=a))
    st = app.state.demo
    threads = torch.get_num_threads()
    try:
        demo.serve("127.0.0.1", 8765, st.clf, st.data_dir, st.cache)
        assert torch.get_num_threads() == demo.SERVE_TORCH_THREADS
    finally:
        torch.set_num_threads(threads)  # serve() sets it for its process; not for the suite's
    assert "http://127.0.0.1:8765/" in capsys.readouterr().out
    assert ran["port"] == 8765 and ran["host"] == "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(app):
    import uvicorn

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "demo server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def _stroke(page, box, points):
    """Drag the mouse through points given as fractions of the canvas box."""
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def test_browser_draw_and_see_matches(server, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (.ci/install-chromium installs it)")
    from playwright import sync_api  # the dev extra installs it (no browser download)

    expect = sync_api.expect
    shot = Path(os.environ.get("ONESHOT_DEMO_SCREENSHOT") or tmp_path / "demo.png")
    problems, foreign = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1180, "height": 900})
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("request", lambda r: r.url.startswith((server, "data:"))
                    or foreign.append(r.url))
            page.goto(server + "/")
            page.wait_for_selector("#grid figure.item >> nth=25")  # Atlantean: 26 characters
            assert page.locator("#grid figure.item").count() == 26
            box = page.locator("#pad").bounding_box()
            _stroke(page, box, [(0.3, 0.2), (0.3, 0.8), (0.7, 0.8)])
            page.wait_for_selector("#matches li >> nth=4", timeout=10_000)
            _stroke(page, box, [(0.2, 0.5), (0.75, 0.35)])
            expect(page.locator("#status")).to_have_text(re.compile("^best: "))
            page.wait_for_selector("#grid figure.item.best")
            assert page.locator("#matches li").count() == 5
            assert page.locator("#grid figure.item.match").count() == 5
            probs = [float(t.rstrip("%")) for t in page.locator("#matches .prob").all_inner_texts()]
            assert probs == sorted(probs, reverse=True) and 0 <= probs[-1] <= probs[0] <= 100
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)

            page.click("#clear")
            assert page.locator("#matches li").count() == 0
            assert page.locator("#grid figure.item.best").count() == 0
            page.click("#another")
            expect(page.locator("#support-title")).not_to_contain_text("Atlantean")
            expect(page.locator("#status")).to_have_text("draw a character")
            _stroke(page, box, [(0.5, 0.2), (0.5, 0.8)])
            page.wait_for_selector("#matches li")
            page.click("#clear")
            page.mouse.click(box["x"] + 5, box["y"] + 5)  # a dot: drawn, so classified
            page.wait_for_selector("#matches li")
        finally:
            browser.close()
    assert not problems, problems
    assert not foreign, f"the page fetched from elsewhere: {foreign}"
    assert shot.stat().st_size > 10_000
