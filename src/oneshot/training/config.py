"""Training configuration: one frozen dataclass, named presets, explicit overrides.

Unknown keys are errors, and so are values of the wrong type or out of range; overrides from the
CLI (``--set field=value``) are parsed with the field's type (numbers, booleans, JSON for dicts
and lists). Names of registered components (``encoder``, ``head``, ``objective``,
``optimizer``, ``lr_schedule``) are checked against their registries when a config is made, so
register your own components before making a config that names them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..augment import make_distortion
from ..data.splits import protocol_error
from ..errors import ConfigError
from ..models import VIEW_SETS, ModelSpec, list_encoders, list_heads
from .objectives import list_objectives
from .optim import OPTIMIZERS, SCHEDULES

__all__ = ["TrainConfig", "PRESETS", "preset", "registered_names"]


def registered_names(cfg) -> dict[str, tuple[str, list[str]]]:
    """{field: (value, registered names)} for the config's registry-backed fields (an unknown
    value first loads the installed plugins: ``oneshot.plugins.installed_on_miss``)."""
    def names() -> dict[str, tuple[str, list[str]]]:
        return {"encoder": (cfg.encoder, list_encoders()), "head": (cfg.head, list_heads()),
                "objective": (cfg.objective, list_objectives()),
                "optimizer": (cfg.optimizer, OPTIMIZERS.names()),
                "lr_schedule": (cfg.lr_schedule, SCHEDULES.names())}
    out = names()
    if any(v not in known for v, known in out.values()):
        from ..plugins import installed_on_miss

        if installed_on_miss():
            out = names()
    return out


def _kind(f: dataclasses.Field) -> str:
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def _check_type(f: dataclasses.Field, value: Any) -> None:
    kind = _kind(f)
    ok = {"bool": lambda v: isinstance(v, bool),
          "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "str": lambda v: isinstance(v, str),
          "dict": lambda v: isinstance(v, dict),
          "list | None": lambda v: v is None or isinstance(v, list)}.get(kind)
    if ok is not None and not ok(value):
        raise ConfigError(f"config {f.name}={value!r}: a {kind} expected")


@dataclass(frozen=True)
class TrainConfig:
    # model
    encoder: str = "conv"
    encoder_args: dict = field(default_factory=dict)
    head: str = "euclidean"
    head_args: dict = field(default_factory=dict)
    # objective (a registered name, see oneshot.training.objectives): "pairs" (binary
    # cross-entropy on same/different pairs) or "episodes" (cross-entropy of each query over an
    # N-way support set, plus ``bce_weight`` x pairwise BCE on the same logits so that
    # sigmoid(logit) stays a calibrated "same" probability); ``objective_args`` go to its factory
    objective: str = "episodes"
    objective_args: dict = field(default_factory=dict)
    batch: int = 32                 # pairs per step (objective "pairs")
    same_alphabet: float = 0.5      # share of negatives from the anchor's alphabet
    balance: str = "character"      # anchors uniform over "character" or "alphabet"
    ways: int = 20                  # episodes: characters per episode (one alphabet)
    queries: int = 2                # episodes: query images per character
    episodes_per_step: int = 1
    bce_weight: float = 0.0
    # data
    train_split: str = "train"      # an Omniglot split name or a folder of classes
    drawers: list | None = None     # restrict training drawers (Koch used 12 of 20)
    rotations: bool = False         # add characters rotated by 90/180/270 degrees as new classes
    flips: bool = False             # add characters mirrored left to right as new classes
    data: str = ""                  # a folder of your classes (DIR/[<group>/]<class>/<image>),
                                    # split into train / validation / test (train_split and
                                    # val_split unused); the split is saved as data_split.json
    data_split: str = ""            # a saved split to use (a run's data_split.json); "": drawn
    split_seed: int = 0             # draws the split (apart from ``seed``: same classes)
    split_by: str = "auto"          # "groups", "classes", or "auto" (groups when >= 3)
    init: str = ""                  # start from these weights: "default" (the shipped model) or
                                    # a model file / run folder; encoder and head follow it
    distort: bool = False           # Koch's affine distortions
    distort_p: float = 0.5
    distort_thickness: float = 0.0  # share of images thickened or thinned by a pixel (augment)
    distort_args: dict = field(default_factory=dict)  # other ranges (augment.make_distortion)
    # optimisation
    optimizer: str = "adam"         # "adam" or "sgd" (momentum, ramped as in Koch et al.)
    lr: float = 1e-3
    lr_schedule: str = "constant"   # "constant", "cosine" (to 0 at ``steps``), "koch" (-1 %/epoch)
    layer_lr: list | None = None    # sgd: per-layer multipliers [conv..., fc, head]
    momentum: float = 0.9           # sgd: final momentum
    momentum_start: float = 0.5
    epoch_steps: int = 1000         # steps per "epoch" for the koch decay and momentum ramp
    momentum_ramp_epochs: int = 10
    l2_conv: float = 0.0            # Keras' l2(lambda) on conv kernels: lambda * sum(w^2), applied
    l2_dense: float = 0.0           # as coupled weight decay 2 * lambda (same gradient)
    steps: int = 20000
    # validation: N-way tasks on held-out alphabets from a saved task list
    val_split: str = "validation"   # an Omniglot split name or a folder of classes
    val_every: int = 200
    val_tasks: int = 250
    val_ways: int = 20
    val_mode: str = "within-alphabet"
    patience: int = 0               # stop after this many validations without improvement; 0: off
    log_lake: bool = False          # also log Lake's benchmark at each validation, for
                                    # time-to-accuracy curves only (never used for selection)
    time_limit_min: float = 0.0     # stop training after this many minutes (0: no limit)
    checkpoint_minutes: float = 5.0  # also write last.pt this often (wall clock; 0: only at
                                     # validations), so a kill loses at most this much
    # execution
    amp: bool = False               # bf16 autocast
    channels_last: bool = False
    device: str = "auto"
    threads: int = 0                # torch threads; 0 = torch's default
    seed: int = 0
    log_every: int = 1
    members: int = 1                # > 1: an ensemble, trained side by side (seeds seed, +1, ...)
    views: str = ""                 # ensembles: test-time views in model.pt (models.VIEW_SETS)

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f, getattr(self, f.name))
        checks = {"balance": (self.balance, ("character", "alphabet")),
                  "val_mode": (self.val_mode, ("within-alphabet", "unstructured")),
                  "split_by": (self.split_by, ("auto", "groups", "classes")),
                  "views": (self.views, ("", *VIEW_SETS)),
                  **registered_names(self)}
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ConfigError(f"config {name}={value!r}; expected one of {list(allowed)}")
        for name in ("batch", "ways", "queries", "episodes_per_step", "steps", "val_every",
                     "val_tasks", "val_ways", "epoch_steps", "log_every", "members"):
            if getattr(self, name) < 1:
                raise ConfigError(f"config {name}={getattr(self, name)}; at least 1 expected")
        probs = ("distort_p", "distort_thickness", "same_alphabet")
        for name in ("lr", *probs, "momentum", "momentum_start", "l2_conv", "l2_dense",
                     "bce_weight", "time_limit_min", "checkpoint_minutes"):
            v, prob = getattr(self, name), name in probs
            if not math.isfinite(v) or v < 0 or (name == "lr" and v == 0) or (prob and v > 1):
                want = "a probability in [0, 1]" if prob else "a finite number " + (
                    "> 0" if name == "lr" else ">= 0")
                raise ConfigError(f"config {name}={v}; {want} expected")
        try:
            make_distortion(self.distort_p, self.distort_thickness, self.distort_args)
        except ValueError as e:
            raise ConfigError(f"config distort_args={self.distort_args}: {e}") from e
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"config device={self.device!r}; auto, cpu, cuda or cuda:N "
                              "expected")
        for name in ("threads", "patience", "seed", "split_seed"):  # numpy/torch take < 2**32
            if not 0 <= getattr(self, name) < 2**32:
                raise ConfigError(f"config {name}={getattr(self, name)}; 0 to 2**32-1 expected")
        if not self.data and (why := protocol_error(self.train_split, self.val_split)):
            raise ConfigError(f"config {why}")
        if self.data and (self.train_split, self.val_split) != ("train", "validation"):
            raise ConfigError(f"config data={self.data!r} splits that folder into train, "
                              "validation and test; train_split and val_split cannot apply "
                              f"too (they are {self.train_split!r}, {self.val_split!r})")
        if self.views and self.members < 2:
            raise ConfigError(f"config views={self.views!r} go into an ensemble's model.pt "
                              "(members >= 2); for one run: oneshot ensemble RUN --views SET")
        if self.data_split and not self.data:
            raise ConfigError(f"config data_split={self.data_split!r} needs data (its folder)")
        if self.drawers is not None and (
                not self.drawers or not all(isinstance(d, int) and 1 <= d <= 20
                                            for d in self.drawers)):
            raise ConfigError(f"config drawers={self.drawers}; a non-empty list of drawer "
                              "numbers 1..20 (or null for all) expected")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TrainConfig":
        """From a JSON file: a config object, or a run's config.json (its "config" entry)."""
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: not a readable JSON config ({e})") from e
        d = d["config"] if isinstance(d, dict) and isinstance(d.get("config"), dict) else d
        if not isinstance(d, dict):
            raise ConfigError(f"{path}: a JSON object of config fields expected")
        return cls.from_dict(d)

    @property
    def model_spec(self) -> ModelSpec:
        return ModelSpec(self.encoder, dict(self.encoder_args), self.head, dict(self.head_args))


PRESETS: dict[str, TrainConfig] = {
    # The tutorial's notebook, faithfully (Koch encoder, Adam 6e-5, Keras L2 penalties, batch 32,
    # 20,000 iterations, 250 20-way tasks every 200), with two corrections: validation on the
    # held-out validation alphabets, within-alphabet; positives never the same image twice.
    "tutorial": TrainConfig(
        encoder="koch", encoder_args={"fc_std": 0.01}, head="l1", objective="pairs", batch=32,
        same_alphabet=0.0, optimizer="adam", lr=6e-5, l2_conv=2e-4, l2_dense=1e-3,
        steps=20000, val_every=200, val_tasks=250, val_ways=20, channels_last=True,
    ),
    # Koch et al. 2015: SGD with momentum ramped 0.5 -> final, per-layer rates decayed 1 % per
    # epoch, batch 128, affine distortions, 12 of 20 drawers, early stopping on 320 tasks.
    # The paper does not publish its tuned per-layer values; these are ours (see the README).
    "koch": TrainConfig(
        encoder="koch", head="l1", objective="pairs", batch=128, same_alphabet=0.5,
        optimizer="sgd", lr=1e-2, lr_schedule="koch", layer_lr=[1.0, 1.0, 1.0, 1.0, 0.1, 0.1],
        momentum=0.9, momentum_start=0.5, epoch_steps=230, momentum_ramp_epochs=20,
        l2_conv=2e-4, l2_dense=1e-3, distort=True, drawers=list(range(1, 13)),
        steps=46000, val_every=230, val_tasks=320, patience=20, channels_last=True,
    ),
    # Our CPU recipe for accuracy per minute (the model card): 56 px in, each character cropped
    # to its ink in the model and convolved at 28 px; label smoothing 0.1 on the episodes.
    "fast": TrainConfig(
        encoder="conv", encoder_args={"input_size": 56, "width": 64, "depth": 4, "centre": True,
                                      "crop": 28}, head="euclidean", objective="episodes",
        ways=20, queries=2, episodes_per_step=2, bce_weight=0.1, rotations=True, distort=True,
        objective_args={"label_smoothing": 0.1}, optimizer="adam", lr=1e-3, lr_schedule="cosine",
        steps=30000, val_every=2000, val_tasks=1000, amp=True, time_limit_min=60.0, log_lake=True,
    ),
    # Your own classes (--data DIR), from the shipped model (its network and input size): the
    # ``fast`` episodes and rate (1e-3 beat 3e-4 and 1e-4 at every step of 4-minute runs), short,
    # validated often on held-out classes (benchmarks/own_data.py, README "Your own classes").
    "finetune": TrainConfig(
        init="default", objective="episodes", ways=20, queries=2, episodes_per_step=2,
        bce_weight=0.1, distort=True, optimizer="adam", lr=1e-3, lr_schedule="cosine",
        steps=1500, val_every=100, val_tasks=500, amp=True, time_limit_min=10.0,
    ),
    # Your own classes from scratch: the earlier ``fast`` network (28 px, no crop) and recipe,
    # shortened for a few hundred classes of a few images each.
    "small": TrainConfig(
        encoder="conv", encoder_args={"input_size": 28, "width": 64, "depth": 4, "centre": True},
        head="euclidean", objective="episodes", ways=20, queries=2, episodes_per_step=2,
        bce_weight=0.1, distort=True, optimizer="adam", lr=1e-3, lr_schedule="cosine",
        steps=3000, val_every=200, val_tasks=500, amp=True, time_limit_min=10.0,
    ),
}
# The shipped model in one command: the exact ensemble of two `fast` runs (seeds 0 and 1), trained
# side by side on one core each (see oneshot.training.ensemble and docs/MODEL_CARD.md).
PRESETS["shipped"] = replace(PRESETS["fast"], members=2, threads=1)


def preset(name: str) -> TrainConfig:
    """The named preset (see ``PRESETS``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]
