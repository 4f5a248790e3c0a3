"""Training: configuration and presets, objectives (a registry), optimisers and schedules,
distributed set-up, and a small loop with hooks.

    cfg = apply_overrides(preset("fast"), ["steps=2000"])
    train(cfg, "runs/mine")

Extend it without editing the package: ``register_objective`` (a new loss),
``oneshot.models.register_encoder`` / ``register_head`` (a new network), custom ``hooks``.
"""

from .config import PRESETS, TrainConfig, preset
from .hooks import Hook, StepInfo, default_hooks
from .loop import StopRequest, Trainer, TrainingInterrupted, TrainResult
from .objectives import (
                         EpisodesObjective,
                         Objective,
                         PairsObjective,
                         StepContext,
                         create_objective,
                         list_objectives,
                         register_objective,
)
from .optim import build_optimizer, build_scheduler, param_groups
from .overrides import apply_overrides, config_diff
from .run import check_config, train

__all__ = ["PRESETS", "EpisodesObjective", "Hook", "Objective", "PairsObjective",
           "StepContext", "StepInfo", "StopRequest", "TrainConfig", "TrainResult", "Trainer",
           "TrainingInterrupted",
           "apply_overrides", "build_optimizer", "build_scheduler", "check_config",
           "config_diff", "create_objective", "default_hooks", "list_objectives",
           "param_groups", "preset", "register_objective", "train"]
