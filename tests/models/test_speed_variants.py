"""The speed variants measured by ``benchmarks/speed.py`` compute the same thing as fp32.

On a few real Omniglot test images, the Koch model's embeddings and pair logits under
channels_last (fp32) match the fp32 reference within 1e-4 relative; under bf16 autocast (with or
without channels_last) every embedding has cosine similarity > 0.99 with the reference and every
logit is within 15 % of the largest reference logit. Evaluation through the embedding cache
(``score_tasks``) gives the same scores as the tutorial's per-task siamese forward, and the
benchmark's analytic FLOP count matches the model's layers.

Why the bf16 logit tolerance is loose: bf16 embeddings are within ~0.004 of fp32 ones (cosine
> 0.9999), but the L1 head sums 4096 absolute differences, so rounding noise adds up (|a - b|
of two noisy values is biased upwards); on untrained models the logits moved by 5-8 % of their
magnitude (3 seeds). Running the fc layer in fp32 only halves that.

The model: the Koch encoder with the tutorial's fc initialisation (N(0, 1e-2); with the paper's
N(0, 0.2) almost every fc unit saturates the sigmoid at 0 or 1, which would make the comparison
vacuous) and head weights -U(0, 1), so that logits weigh every distance like a trained head's
(the default head initialisation leaves every logit at about its bias).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from oneshot import EncoderScorer, ModelSpec, build_model, load_split, sample_tasks
from oneshot.evaluation.nway import score_tasks
from oneshot.models.encoders import koch_layer_macs
from oneshot.preprocess import images_to_tensor

FP32_RTOL = 1e-4          # channels_last fp32: max |diff| / max |reference|
BF16_COSINE = 0.99        # bf16 autocast: per-image cosine similarity of embeddings
BF16_LOGIT_RTOL = 0.15    # bf16 autocast: max |logit diff| / max |reference logit|
N_IMAGES = 8
SPEC = ModelSpec("koch", {"fc_std": 0.01}, "l1")


def _per_pair_forward(model, x, query, support) -> torch.Tensor:
    """The tutorial's way, the brute-force reference: per task, one siamese forward over its N
    (query, candidate) pairs. float32 (T, N) logits."""
    model.eval()
    with torch.no_grad():
        return torch.stack([model(x[int(q)].expand(len(s), -1, -1, -1),
                                  x[torch.from_numpy(s)]).float()
                            for q, s in zip(query, support)])


@pytest.fixture(scope="module")
def test_split(data_dir, cache_dir):
    return load_split("test", data_dir, cache_dir)


@pytest.fixture(scope="module")
def reference(test_split):
    """Model, images (float32 (8, 1, 105, 105)), fp32 embeddings and pair logits."""
    torch.manual_seed(0)
    model = build_model(SPEC, seed=0).eval()
    with torch.no_grad():
        model.head.fc.weight.copy_(-torch.rand(1, 4096, generator=torch.Generator().manual_seed(0)))
    idx = np.random.default_rng(0).choice(len(test_split), N_IMAGES, replace=False)
    x = images_to_tensor(test_split.images[idx], 105)
    with torch.no_grad():
        emb = model.encoder(x)
        logits = model(x[:4], x[4:])
    return model, x, emb, logits


def _run(model, x, amp: bool, channels_last: bool):
    if channels_last:
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        emb = model.encoder(x).float()
        logits = model(x[:4], x[4:]).float()
    return emb, logits


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a - ref).abs().max() / ref.abs().max())


def test_reference_is_not_saturated(reference):
    _, _, emb, logits = reference
    assert ((emb > 0.01) & (emb < 0.99)).float().mean() > 0.5
    assert logits.abs().max() > 0.1 and logits.max() - logits.min() > 0.1


def test_channels_last_fp32_matches(reference):
    model, x, emb, logits = reference
    e, lg = _run(model, x, amp=False, channels_last=True)
    assert _rel(e, emb) < FP32_RTOL
    assert _rel(lg, logits) < FP32_RTOL


@pytest.mark.parametrize("channels_last", [False, True])
def test_bf16_autocast_close(reference, channels_last):
    model, x, emb, logits = reference
    e, lg = _run(model, x, amp=True, channels_last=channels_last)
    assert torch.isfinite(e).all() and torch.isfinite(lg).all()
    cos = torch.nn.functional.cosine_similarity(e, emb, dim=1)
    assert cos.min() > BF16_COSINE, cos
    assert _rel(lg, logits) < BF16_LOGIT_RTOL, (lg, logits)


def test_cache_scores_equal_per_pair_forward(reference, test_split):
    model = reference[0]
    tasks = sample_tasks(test_split, 5, 3, "within-alphabet", seed=0)
    cached = score_tasks(EncoderScorer(model), test_split.images, tasks).scores
    used, inverse = np.unique(np.concatenate([tasks.query, tasks.support.ravel()]),
                              return_inverse=True)
    x = images_to_tensor(test_split.images[used], 105)
    per_pair = _per_pair_forward(model, x, inverse[:3], inverse[3:].reshape(3, 5))
    assert cached.shape == per_pair.shape == (3, 5)
    assert _rel(cached, per_pair) < FP32_RTOL
    assert (cached.argmax(1) == per_pair.argmax(1)).all()


def test_analytic_flops_match_layers(reference):
    """``koch_layer_macs`` (used for the fraction of peak) equals a count from the modules."""
    model, x, _, _ = reference
    counted = []

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            counted.append(out[0].numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1])
        else:
            counted.append(m.in_features * m.out_features)

    hs = [m.register_forward_hook(hook) for m in model.encoder.modules()
          if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.no_grad():
            model.encoder(x[:1])
    finally:
        for h in hs:
            h.remove()
    macs = koch_layer_macs()
    assert list(macs.values()) == counted
