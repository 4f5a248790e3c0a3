"""Run by tests/test_distributed.py under torchrun: train, then save this rank's weights.

A third argument ``float64`` trains in double precision (parameters made under that default
dtype, every module's float32 inputs promoted): the test of the distributed arithmetic itself,
free of float32 rounding (see test_two_processes_match_one_with_the_same_global_batch)."""

import json
import os
import sys

import torch
from torch.nn.modules.module import register_module_forward_pre_hook

from oneshot.training import TrainConfig, train


def _promote(module, args):
    return tuple(a.double() if torch.is_tensor(a) and a.dtype == torch.float32 else a
                 for a in args)


if sys.argv[3:] == ["float64"]:
    torch.set_default_dtype(torch.float64)
    register_module_forward_pre_hook(_promote)
cfg = TrainConfig.from_dict(json.loads(sys.argv[2]))
result = train(cfg, sys.argv[1], progress=False)
rank = int(os.environ.get("RANK", "0"))
torch.save(result.model.state_dict(), f"{sys.argv[1]}.rank{rank}.pt")
