"""ONNX export and the ONNX Runtime backend (oneshot.onnx).

Tolerance (fp32): ONNX Runtime and PyTorch run the same float32 arithmetic in a different order,
so embeddings agree to rounding: |onnx - torch| <= ATOL + RTOL * |torch| elementwise.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from support import class_folder

ONNX_EXTRA = "pip install 'oneshot-siamese[onnx]'"
pytest.importorskip("onnxruntime", reason=f"onnxruntime not installed: {ONNX_EXTRA}")
pytest.importorskip("onnxscript", reason=f"onnxscript not installed: {ONNX_EXTRA}")

from oneshot.checkpoint import (  # noqa: E402
    default_model_path,  # noqa: E402
    load_model,
    model_fingerprint,
)
from oneshot.cli import main  # noqa: E402
from oneshot.demo import create_app  # noqa: E402
from oneshot.evaluation.lake import lake_benchmark  # noqa: E402
from oneshot.evaluation.nway import predict_positions  # noqa: E402
from oneshot.evaluation.scorers import EncoderScorer  # noqa: E402
from oneshot.inference import OneShotClassifier  # noqa: E402
from oneshot.models import ModelSpec, build_model, list_encoders  # noqa: E402
from oneshot.onnx import (  # noqa: E402
    ONNX_FORMAT,
    OnnxEncoder,
    OnnxError,
    export_onnx,
    export_onnx_files,
    load_onnx_model,
    quantize_onnx,
)
from oneshot.preprocess import images_to_tensor  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5

SMALL_CONV = {"input_size": 20, "width": 8, "depth": 3, "centre": True}
# One small configuration per registered encoder (koch has no size options: the paper's network).
CONFIGS = {
    "koch": ({}, "l1"),
    "conv": ({"input_size": 20, "width": 8, "depth": 3, "pool": "avg", "dim": 16, "crop": 16},
             "l1"),
    "concat": ({"members": [{"encoder": "conv", "encoder_args": SMALL_CONV},
                            {"encoder": "conv", "encoder_args": {**SMALL_CONV, "pool": "max"}}],
                "weights": [0.7, 1.3]}, "euclidean"),
    "views": ({"inner": {"encoder": "conv", "encoder_args": {**SMALL_CONV, "centre": True}},
               "views": [[0.0, 1.0, 0.0], [8.0, 1.1, 0.1]]}, "euclidean"),
}


@pytest.fixture(scope="module")
def shipped():
    model, record = load_model(default_model_path())
    return model, record


@pytest.fixture(scope="module")
def shipped_onnx(shipped, tmp_path_factory):
    model, record = shipped
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "default.onnx", record)
    return load_onnx_model(path, threads=1)


@pytest.mark.parametrize("name", list_encoders())
def test_every_encoder_exports_with_dynamic_batch(name, tmp_path):
    if name not in CONFIGS:
        pytest.fail(f"no small configuration for registered encoder {name!r}: add one to CONFIGS")
    args, head = CONFIGS[name]
    model = build_model(ModelSpec(name, args, head), seed=0)  # training mode: export must not care
    with torch.no_grad():  # non-trivial batch-norm statistics and head parameters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        for p in model.head.parameters():
            p.add_(0.25)
    net = load_onnx_model(export_onnx(model, tmp_path / "m.onnx", {"test": name}), threads=1)
    assert model.training  # the caller's model is left as it was
    model.eval()
    enc = net.encoder
    s = model.encoder.input_size
    assert (enc.input_size, enc.embedding_dim) == (s, model.encoder.embedding_dim)
    assert enc.spec == model.spec and enc.record == {"test": name}
    assert enc.fingerprint == model_fingerprint(model)
    for k, v in model.head.state_dict().items():
        assert torch.equal(net.head.state_dict()[k], v), k  # head parameters exactly
    gen = torch.Generator().manual_seed(1)
    for batch in (1, 5):  # neither is the export's example batch (2): the batch is dynamic
        x = torch.rand(batch, 1, s, s, generator=gen)
        for i in range(batch):  # ink boxes of different sizes and places (the crop option)
            x[i, :, : 2 + i] = 0
            x[i, :, :, s - 3 - i:] = 0
        got = enc.embed(x)
        assert got.dtype == torch.float32 and got.shape == (batch, enc.embedding_dim)
        with torch.no_grad():
            torch.testing.assert_close(got, model.encoder(x), rtol=RTOL, atol=ATOL)
        pairs = net(x, x.flip(0))
        with torch.no_grad():
            torch.testing.assert_close(pairs, model(x, x.flip(0)), rtol=RTOL, atol=ATOL)


def test_shipped_model_on_lake_matches_pytorch(shipped, shipped_onnx, lake_runs):
    model, record = shipped
    net = shipped_onnx
    assert net.fingerprint == model_fingerprint(model)
    images = np.concatenate([np.concatenate([r.train_images, r.test_images]) for r in lake_runs])
    x = images_to_tensor(images, net.encoder.input_size)
    with torch.no_grad():
        ref = model.encoder(x)
    got = net.encoder.embed(x)
    torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL)
    preds = {}
    for name, emb, head in (("torch", ref, model.head), ("onnx", got, net.head)):
        out = []
        for k in range(len(lake_runs)):  # per run: 20 test images x 20 training images
            train, test = emb[40 * k: 40 * k + 20], emb[40 * k + 20: 40 * k + 40]
            with torch.no_grad():
                out.append(predict_positions(head.pairwise(test, train)))
        preds[name] = np.concatenate(out)
    assert len(preds["onnx"]) == 400
    np.testing.assert_array_equal(preds["onnx"], preds["torch"])
    res_torch = lake_benchmark(EncoderScorer(model), lake_runs)
    res_onnx = lake_benchmark(EncoderScorer(net), lake_runs)  # the stand-in fits the scorer
    np.testing.assert_array_equal(res_onnx.per_run_correct, res_torch.per_run_correct)
    assert res_onnx.accuracy.value == record["lake"]["accuracy"]


def test_classifier_runs_on_the_onnx_model(shipped, shipped_onnx, lake_runs):
    model, _ = shipped
    run = lake_runs[0]
    labels = [f"c{i}" for i in range(20)]
    out = {}
    for name, m in (("torch", model), ("onnx", shipped_onnx)):
        clf = OneShotClassifier(m)
        clf.enrol(list(run.train_images), labels)
        out[name] = [(p.label, [lab for lab, _ in p.top]) for p in
                     clf.predict(list(run.test_images), top_k=5)]
    assert out["onnx"] == out["torch"]


def test_gallery_from_pytorch_is_accepted_by_its_export(shipped, shipped_onnx, lake_runs,
                                                        tmp_path):
    model, _ = shipped
    clf = OneShotClassifier(model)
    clf.enrol(list(lake_runs[0].train_images[:3]), ["a", "b", "c"])
    clf.save(tmp_path / "g.npz")
    other = OneShotClassifier(shipped_onnx)
    other.load_gallery(tmp_path / "g.npz")
    assert other.classes == ["a", "b", "c"]


def test_int8_stays_within_half_a_point_on_lake(shipped_onnx, splits, lake_runs, tmp_path):
    src, s = shipped_onnx.encoder.path, shipped_onnx.encoder.input_size
    with pytest.raises(OnnxError, match="overwrite the input"):
        quantize_onnx(src, src, torch.zeros(1, 1, s, s))
    bg = splits["background"].images  # calibration from the training alphabets, never Lake's
    pick = np.random.default_rng(0).choice(len(bg), 256, replace=False)
    path = quantize_onnx(src, tmp_path / "int8.onnx", images_to_tensor(bg[pick], s))
    net8 = load_onnx_model(path, threads=1)
    assert net8.fingerprint != shipped_onnx.fingerprint  # fp32 galleries are not accepted
    assert net8.encoder.spec == shipped_onnx.encoder.spec
    fp32 = lake_benchmark(EncoderScorer(shipped_onnx), lake_runs).accuracy.value
    int8 = lake_benchmark(EncoderScorer(net8), lake_runs).accuracy.value
    assert abs(int8 - fp32) <= 0.5, (fp32, int8)


def test_refuses_to_overwrite_a_checkpoint_or_other_files(shipped, tmp_path):
    model, _ = shipped
    target = tmp_path / "model.pt"
    shutil.copy(default_model_path(), target)
    before = target.read_bytes()
    with pytest.raises(OnnxError, match="PyTorch checkpoint or model file"):
        export_onnx(model, target)
    assert target.read_bytes() == before
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(OnnxError, match="not an earlier oneshot ONNX export"):
        export_onnx(model, png)
    with pytest.raises(OnnxError, match="is a folder"):
        export_onnx(model, tmp_path)
    with pytest.raises(OnnxError, match="not a regular file"):  # never read, never replaced
        export_onnx(model, "/dev/null")
    (tmp_path / "link.onnx").symlink_to(png)
    with pytest.raises(OnnxError, match="symbolic link"):
        export_onnx(model, tmp_path / "link.onnx")
    with pytest.raises(OnnxError, match="already an ONNX export"):
        export_onnx(load_onnx_model(export_onnx(
            build_model(ModelSpec("conv", {"input_size": 12, "width": 4, "depth": 2})),
            tmp_path / "small.onnx")), tmp_path / "again.onnx")
    with pytest.raises(OnnxError, match="not a readable ONNX model.*rename it to .pt"):
        OnnxEncoder(target)
    # the suffix is how files are recognised: an ONNX export named .pt could not be loaded, and
    # --int8 onto --out was found out only after writing it (found by a review helper)
    for out, int8, says in [(tmp_path / "w.pt", None, "ends in .onnx"),
                            (tmp_path / "s.onnx", tmp_path / "s.onnx", "is --out too")]:
        with pytest.raises(OnnxError, match=says):
            export_onnx_files(default_model_path(), out, int8)
        assert not out.exists()


def test_reexport_overwrites_an_earlier_export(tmp_path):
    path = tmp_path / "m.onnx"
    a = build_model(ModelSpec("conv", {"input_size": 12, "width": 4, "depth": 2}, "euclidean"),
                    seed=0)
    b = build_model(a.spec, seed=1)
    export_onnx(a, path)
    export_onnx(b, path)
    assert OnnxEncoder(path).fingerprint == model_fingerprint(b) != model_fingerprint(a)


def test_an_opset_the_exporter_cannot_write_is_refused(tmp_path):
    """torch.onnx writes its own opset (18) where it cannot convert: the file said it was the
    opset asked for (review); now refused, naming the opset written, and nothing is left."""
    import onnx

    net = build_model(ModelSpec("conv", {"input_size": 12, "width": 4, "depth": 2}), seed=0)
    for opset in (11, 999):
        with pytest.raises(OnnxError, match=rf"opset {opset} was asked for, but torch.onnx "
                                            r"wrote opset 18 .*use --opset 18"):
            export_onnx(net, tmp_path / "old.onnx", opset=opset)
        assert not (tmp_path / "old.onnx").exists()
    for opset in (17, 21):  # what it converts to is written as asked
        path = export_onnx(net, tmp_path / f"{opset}.onnx", opset=opset)
        assert [o.version for o in onnx.load(path).opset_import if o.domain == ""] == [opset]


def test_foreign_onnx_file_is_an_unknown_format(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["embeddings"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["B", 1, 4, 4])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["B", 1, 4, 4])])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path)
    with pytest.raises(OnnxError, match=f"format None, '{ONNX_FORMAT}' expected"):
        OnnxEncoder(path)
    with pytest.raises(OnnxError, match="not an earlier oneshot ONNX export"):
        export_onnx(build_model(ModelSpec("conv", {"input_size": 12, "depth": 2})), path)
    with pytest.raises(OnnxError, match="no such ONNX file"):
        OnnxEncoder(tmp_path / "missing.onnx")


def test_missing_runtime_names_the_package(shipped_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    with pytest.raises(ImportError, match=r"pip install onnxruntime .*oneshot-siamese\[onnx\]"):
        OnnxEncoder(shipped_onnx.encoder.path)


def test_missing_exporter_dependency_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    model = build_model(ModelSpec("conv", {"input_size": 12, "width": 4, "depth": 2}))
    with pytest.raises(ImportError, match="pip install onnxscript"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_embed_checks_the_input_shape(shipped_onnx):
    s = shipped_onnx.encoder.input_size
    with pytest.raises(ValueError, match=rf"\(B, 1, {s}, {s}\) expected"):
        shipped_onnx.encoder.embed(torch.zeros(2, 1, 105, 105))
    assert shipped_onnx.encoder.embed(torch.zeros(0, 1, s, s)).shape == (0, 512)


def test_cli_exports_and_every_command_takes_the_onnx_file(tiny_model_file, tmp_path, capsys):
    onnx_path, int8_path = tmp_path / "m.onnx", tmp_path / "m8.onnx"
    assert main(["export", str(tiny_model_file), "--out", str(onnx_path),
                 "--int8", str(int8_path)]) == 0
    assert "written" in capsys.readouterr().out and onnx_path.is_file() and int8_path.is_file()
    assert main(["export", str(tiny_model_file), "--format", "onnx", "--out",
                 str(tiny_model_file)]) == 2
    assert "ends in .onnx" in capsys.readouterr().err  # before "is the input": never written
    support = class_folder(tmp_path / "s", ["a", "b", "c"])
    gallery = tmp_path / "g.npz"
    assert main(["enrol", "--model", str(tiny_model_file), "--gallery", str(gallery),
                 str(support)]) == 0
    q = str(support / "b" / "0.png")
    for model in (tiny_model_file, onnx_path):  # the PyTorch gallery works with its export
        assert main(["classify", "--model", str(model), "--gallery", str(gallery), q,
                     "--json"]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["label"] == "b"
    assert main(["classify", "--model", str(int8_path), "--gallery", str(gallery), q]) == 2
    assert "another model" in capsys.readouterr().err  # int8 embeds differently
    assert main(["verify", "--model", str(onnx_path), q, q, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["same"] is True
    app = create_app(str(onnx_path))
    assert app.state.demo.clf.fingerprint == OneShotClassifier.load(tiny_model_file).fingerprint
