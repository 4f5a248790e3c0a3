"""Fine-tuning: start a run from existing weights (``init``: "default", a model file, a
checkpoint or a run folder) instead of a random initialisation.

The network is the init model's: :func:`resolve_init` sets the config's ``encoder``,
``encoder_args``, ``head`` and ``head_args`` to its spec (so its input size, and the one grey
channel every encoder takes, follow the model, and ``config.json`` records what was trained);
:func:`initial_model` builds it and loads the weights. A resumed run takes its weights from
``last.pt`` as usual.
"""

from __future__ import annotations

from dataclasses import replace

from ..checkpoint import CheckpointError, load_model
from ..errors import ConfigError
from ..models import SiameseNet, build_model
from .config import TrainConfig

__all__ = ["resolve_init", "initial_model"]


def _init_model(cfg: TrainConfig) -> SiameseNet:
    model, _ = load_model(None if cfg.init == "default" else cfg.init)
    if not isinstance(model, SiameseNet):
        raise CheckpointError(f"config init={cfg.init!r}: a {type(model).__name__} cannot be "
                              "trained; start from the PyTorch model it was exported from")
    return model


def resolve_init(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the init model's architecture (unchanged without ``init``)."""
    if not cfg.init:
        return cfg
    spec = _init_model(cfg).spec
    return replace(cfg, encoder=spec.encoder, encoder_args=dict(spec.encoder_args),
                   head=spec.head, head_args=dict(spec.head_args))


def initial_model(cfg: TrainConfig) -> SiameseNet:
    """The network to train: built from the config (seeded), with the init model's weights
    when ``cfg.init`` names one (its spec must be the config's: see :func:`resolve_init`)."""
    model = build_model(cfg.model_spec, seed=cfg.seed)
    if cfg.init:
        init = _init_model(cfg)
        if init.spec.to_dict() != model.spec.to_dict():
            raise ConfigError(f"config init={cfg.init!r} is a {init.spec.to_dict()} model but "
                              f"the config asks for {model.spec.to_dict()}; leave encoder and "
                              "head to the init model")
        model.load_state_dict(init.state_dict())
    return model
