"""Run by tests/test_distributed.py under torchrun: train, then save this rank's weights."""

import json
import os
import sys

import torch

from oneshot.training import TrainConfig, train

cfg = TrainConfig.from_dict(json.loads(sys.argv[2]))
result = train(cfg, sys.argv[1], progress=False)
rank = int(os.environ.get("RANK", "0"))
torch.save(result.model.state_dict(), f"{sys.argv[1]}.rank{rank}.pt")
