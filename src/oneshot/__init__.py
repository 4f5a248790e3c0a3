"""oneshot: one-shot image recognition with Siamese networks (Koch et al. 2015) on Omniglot.

The public API is re-exported here; everything else may change.
"""

from .augment import Distortion, distort
from .checkpoint import CheckpointError, export_model, load_model
from .config import PRESETS, TrainConfig, apply_overrides, preset
from .data.dataset import Dataset
from .data.folder import load_folder
from .data.lake import load_lake_runs
from .data.omniglot import DataError, load_archive
from .data.splits import load_split
from .evaluation.baselines import ModifiedHausdorffScorer, NearestNeighbourScorer
from .evaluation.lake import lake_benchmark
from .evaluation.metrics import Accuracy, wilson_interval
from .evaluation.nway import evaluate_tasks, score_tasks
from .evaluation.runner import EvalSettings, evaluate
from .evaluation.scorers import ConstantScorer, EncoderScorer, RandomScorer
from .inference import UNKNOWN, GalleryError, OneShotClassifier, Prediction
from .models import ModelSpec, SiameseNet, build_model, create_encoder, encoder_names
from .preprocess import ImageError, preprocess
from .sampling import EpisodeSampler, PairSampler, TaskList, sample_tasks
from .train import train

__version__ = "0.1.0"

__all__ = [
    "Accuracy", "CheckpointError", "ConstantScorer", "DataError", "Dataset", "Distortion",
    "EncoderScorer", "EpisodeSampler", "EvalSettings", "GalleryError", "ImageError",
    "ModelSpec", "ModifiedHausdorffScorer", "NearestNeighbourScorer", "OneShotClassifier",
    "PRESETS", "PairSampler", "Prediction", "RandomScorer", "SiameseNet", "TaskList",
    "TrainConfig", "UNKNOWN", "apply_overrides", "build_model", "create_encoder", "distort",
    "encoder_names", "evaluate", "evaluate_tasks", "export_model", "lake_benchmark",
    "load_archive", "load_folder", "load_lake_runs", "load_model", "load_split", "preset",
    "preprocess", "sample_tasks", "score_tasks", "train", "wilson_interval",
]
