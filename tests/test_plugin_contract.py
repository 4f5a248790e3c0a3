"""What a plugin author's mistakes meet (review of the extension points): a broken installed
plugin, two plugin files of one name, encoders with the wrong output, heads that are not heads
or give NaN, an Euclidean head's subclass in an ensemble, a diverging loss; and --set's
overrides when the component changes."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from torch import nn

import oneshot.plugins as plugins
from oneshot.errors import ConfigError, ModelError, OneshotError, TrainingDiverged
from oneshot.models import build_model
from oneshot.models.encoders import Encoder, create_encoder, register_encoder
from oneshot.models.ensemble import check_ensemble_head
from oneshot.models.heads import EuclideanHead, checked_logits, create_head, register_head
from oneshot.training import apply_overrides, preset


class _Shaped(Encoder):
    def __init__(self, dim: int = 16, out: int = 16, dtype: str = "float32", flag=None):
        super().__init__()
        self.input_size, self.embedding_dim = 28, dim if flag is None else flag
        self.fc = nn.Linear(28 * 28, out)
        self.dtype = getattr(torch, dtype)

    def forward(self, x):
        return self.fc(x.flatten(1)).to(self.dtype)


register_encoder("test-shaped", _Shaped, replace=True)


def test_an_encoders_wrong_output_is_named_when_it_is_built():
    """Wrong widths or types used to train and fail late (enrol, an unloadable ONNX file)."""
    assert create_encoder("test-shaped").embedding_dim == 16
    with pytest.raises(ModelError, match=r"'test-shaped' returns \(2, 8\) torch.float32 .*16"):
        create_encoder("test-shaped", out=8)
    with pytest.raises(ModelError, match="float64"):
        create_encoder("test-shaped", dtype="float64")
    with pytest.raises(ConfigError, match="embedding_dim=True"):
        create_encoder("test-shaped", flag=True)


def test_a_head_factory_must_make_a_head_and_nan_scores_are_refused():
    register_head("test-not-a-head", lambda dim: nn.Identity(), replace=True)
    with pytest.raises(ConfigError, match="returned a Identity"):
        create_head("test-not-a-head", 4)
    head = create_head("euclidean", 4)
    scores = torch.tensor([0.5, float("nan")])
    with pytest.raises(ModelError, match="NaN scores for 1 of 2 pairs"):
        checked_logits(scores, head)
    assert checked_logits(scores[:1], head) is not None


def test_nan_scores_stop_an_evaluation():
    from oneshot import EncoderScorer

    net = build_model({"encoder": "test-shaped", "head": "euclidean"})
    with torch.no_grad():
        net.head.bias.fill_(float("nan"))
    scorer = EncoderScorer(net)
    cache = scorer.embed(torch.zeros(3, 28, 28).numpy())
    with pytest.raises(ModelError, match="NaN"):
        scorer.score(cache, torch.tensor([0, 1]), torch.tensor([1, 2]))


def test_only_the_euclidean_head_itself_ensembles_exactly():
    class Cosine(EuclideanHead):  # a subclass that scores otherwise
        def forward(self, a, b):
            return torch.cosine_similarity(a, b, dim=-1)

    check_ensemble_head(EuclideanHead(4), "model 0")
    with pytest.raises(ConfigError, match="Cosine"):
        check_ensemble_head(Cosine(4), "model 0")


def test_a_diverging_loss_is_a_oneshot_error():
    """It was a bare FloatingPointError: a traceback from the command line."""
    assert issubclass(TrainingDiverged, OneshotError)
    assert issubclass(TrainingDiverged, FloatingPointError)


def test_a_broken_installed_plugin_is_a_warning_not_a_crash(monkeypatch, caplog):
    class BrokenEntryPoint:
        name, value = "broken", "broken_pkg.plugin"

        def load(self):
            raise ImportError("No module named 'broken_pkg'")

    monkeypatch.setattr(plugins, "entry_points", lambda group: [BrokenEntryPoint()])
    with caplog.at_level(logging.WARNING):
        assert plugins.load_plugins([], environment=False) == []
    assert "installed plugin 'broken' (broken_pkg.plugin) was not loaded" in caplog.text


def test_two_plugin_files_of_one_name_are_two_plugins(tmp_path):
    names = []
    for k in (1, 2):
        (tmp_path / f"p{k}").mkdir()
        f = tmp_path / f"p{k}" / "plugin.py"
        f.write_text("from oneshot.models.heads import EuclideanHead, register_head\n"
                     f"register_head('test-from-p{k}', EuclideanHead, replace=True)\n")
        plugins.load_plugin(str(f))
        names.append(f"test-from-p{k}")
    assert create_head(names[0], 4) is not None and create_head(names[1], 4) is not None


def test_a_new_component_drops_the_presets_arguments_for_the_old_one(caplog):
    """README's `--set objective=mine` failed: `fast` carries the episodes' label_smoothing."""
    with caplog.at_level(logging.WARNING):
        cfg = apply_overrides(preset("fast"), ["objective=pairs"])
    assert cfg.objective_args == {} and "objective_args" in caplog.text
    kept = apply_overrides(preset("fast"), {"objective": "pairs", "objective_args": {}})
    assert kept.objective_args == {}
    same = apply_overrides(preset("fast"), ["objective=episodes"])
    assert same.objective_args == preset("fast").objective_args


def test_repeated_set_options_add_up():
    """`--set steps=7 --set threads=1` used to keep only the last one."""
    from oneshot.cli_parser import build_parser

    args = build_parser().parse_args(["train", "--preset", "fast", "--out", "x", "--set",
                                      "steps=7", "--set", "threads=1"])
    assert args.set == ["steps=7", "threads=1"]


def test_an_objectives_wrong_result_and_a_perturbations_nan_are_named():
    """Both surfaced as deep tracebacks or "image is blank" (review)."""
    import numpy as np

    from oneshot.evaluation.perturbations import Perturbation
    from oneshot.training.objectives import checked_loss

    w = torch.ones(2, requires_grad=True)
    loss = (w * 2).sum()
    assert checked_loss((loss, 3), "mine") == (loss, 3)
    for bad, says in (((w * 2, 3), "shape (2,)"), ((loss.detach(), 3), "no graph"),
                      ((loss, 2.5), "type float"), ((loss,), "tuple"), (loss, "Tensor")):
        with pytest.raises(ModelError, match="objective 'mine'.*" + re.escape(says)):
            checked_loss(bad, "mine")
    nan = Perturbation("test-nan", lambda x, rng: x * np.nan, "NaN")
    with pytest.raises(ValueError, match="'test-nan' gave 4 NaN"):
        nan(np.zeros((2, 2), np.float32), np.random.default_rng(0))
