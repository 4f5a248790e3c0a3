"""oneshot: one-shot image recognition with Siamese networks (Koch et al. 2015) on Omniglot.

The public API is re-exported here; everything else may change. Names are imported on first
use (PEP 562), so ``import oneshot`` and ``oneshot --help`` do not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    ".augment": ["Distortion", "distort"],
    ".checkpoint": ["CheckpointError", "export_model", "load_model", "resolve_model_path",
                    "default_model_path"],
    ".training": ["PRESETS", "TrainConfig", "apply_overrides", "preset", "train", "Trainer",
                  "Hook", "register_objective", "list_objectives", "Objective", "StepContext"],
    ".data.dataset": ["Dataset"],
    ".data.lake": ["load_lake_runs"],
    ".data.omniglot": ["DataError", "load_archive"],
    ".data.splits": ["load_split"],
    ".data.partition": ["ClassSplit", "split_classes"],
    ".datasets": ["load_data", "load_folder_dataset", "load_folder_part"],
    ".batch": ["classify_paths"],
    ".data.images": ["ImageError"],
    ".embedding": ["Embedder"],
    ".errors": ["OneshotError", "ConfigError", "UsageError"],
    ".evaluation.baselines": ["ModifiedHausdorffScorer", "NearestNeighbourScorer"],
    ".evaluation.lake": ["lake_benchmark"],
    ".evaluation.metrics": ["Accuracy", "wilson_interval"],
    ".evaluation.nway": ["evaluate_tasks", "score_tasks"],
    ".evaluation.perturbations": ["list_perturbations", "get_perturbation",
                                  "register_perturbation"],
    ".evaluation.robustness": ["run_robustness", "RobustnessScorer", "robustness_markdown"],
    ".evaluation.runner": ["EvalSettings", "evaluate"],
    ".evaluation.scorers": ["ConstantScorer", "EncoderScorer", "RandomScorer"],
    ".inference": ["UNKNOWN", "GalleryError", "OneShotClassifier", "Prediction",
                   "Verification", "enrol_into_gallery"],
    ".onnx": ["export_onnx", "load_onnx_model", "quantize_onnx", "OnnxError"],
    ".models": ["ModelSpec", "SiameseNet", "build_model", "create_encoder", "list_encoders",
                "register_encoder", "create_head", "list_heads", "register_head", "Encoder",
                "Head"],
    ".plugins": ["load_plugins"],
    ".preprocess": ["preprocess", "Preprocessing"],
    ".report": ["evaluate_and_report"],
    ".sampling": ["EpisodeSampler", "PairSampler", "TaskList", "sample_tasks"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'oneshot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
