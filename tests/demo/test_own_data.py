"""The demo on a folder of your classes instead of the test alphabets (``demo --data DIR``)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from starlette.testclient import TestClient
from support import class_folder, png

from oneshot import demo


def test_demo_shows_a_folders_classes(model_file, tmp_path):
    root = class_folder(tmp_path / "shapes", ["g1/a", "g1/b", "g2/c"], per_class=[2, 3, 2])
    app = demo.create_app(model_file, cache=tmp_path / "cache", data=root)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        info = c.get("/api/info").json()
        assert info["split"] == "shapes" and info["data"] == "folder"
        assert c.get("/api/alphabets").json() == {
            "split": "shapes", "alphabets": [{"name": "g1", "characters": 2},
                                             {"name": "g2", "characters": 1}]}
        s = c.get("/api/support/g1").json()
        assert [i["label"] for i in s["items"]] == ["a", "b"]
        first = np.asarray(Image.open(io.BytesIO(base64.b64decode(
            s["items"][0]["image"].split(",", 1)[1]))))
        body = {"support": "g1", "image": "data:image/png;base64," + base64.b64encode(
            png(1 - first / 255.0)).decode(), "top_k": 2}
        r = c.post("/api/classify", json=body).json()
        assert r["label"] == "a" and len(r["top"]) == 2  # its own support image
        assert c.get("/api/support/nope").status_code == 404
