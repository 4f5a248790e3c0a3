"""The tutorial's Siamese network in Keras 3 (TensorFlow backend, CPU): the speed peer of
``benchmarks/speed.py``.

What it is: Koch et al.'s network as the tutorial's Keras notebook builds it, written here from
its description: input 105x105x1; conv 64@10x10 ReLU, max-pool 2; conv 128@7x7 ReLU, max-pool;
conv 128@4x4 ReLU, max-pool; conv 256@4x4 ReLU; flatten; dense 4096 sigmoid. L2 penalties 2e-4 on
the convolutions and 1e-3 on the dense layer; weights N(0, 1e-2), biases N(0.5, 1e-2). One
encoder (shared weights) for both images, the L1 distance |a - b|, Dense(1, sigmoid); Adam
(lr 6e-5) on binary cross-entropy. 38,951,745 parameters, like ``oneshot``'s ``koch`` model.

What it measures (each function is one measurement primitive; the worker times them with
``_common.timed``, ``speed.py`` interleaves and summarises):

- :func:`train_step`: one ``train_on_batch`` on a batch of pairs (forward both images, loss
  with the L2 penalties, backward, Adam step);
- :func:`embed`: ``encoder.predict`` over images (embedding throughput);
- :func:`evaluate_tutorial_way`: 20-way evaluation as the tutorial does it: one ``predict`` call
  per task over all its (query, candidate) pairs, so the query is embedded N times per task and
  every candidate once per task it appears in;
- :func:`evaluate_cache_way`: the same tasks with every distinct image embedded once (one
  ``predict`` over all of them), then the L1 head on the cached embeddings (for reference).

Why a separate process and virtualenv: TensorFlow and PyTorch in one process fight over threads
(two OpenMP/Eigen pools on the same cores), and TensorFlow's wheels pin their own numpy and
protobuf. So the Keras side runs in its own virtualenv and its own process; ``speed.py`` (run
with the package's ``.venv``) starts this file as a worker::

    python3.11 -m venv .venv-bench
    .venv-bench/bin/pip install tensorflow-cpu keras numpy    # the "bench" extra's packages
    .venv/bin/python benchmarks/speed.py --keras-python .venv-bench/bin/python

Written against tensorflow-cpu 2.21.0, keras 3.15.1, numpy 2.4.6 (from PyPI); XLA is off
(``jit_compile=False``, which Keras 3 also picks by default on a CPU-only machine) and
TensorFlow's oneDNN kernels are on (its default on x86 Linux).

Worker protocol (``--worker DATA.npz``): the worker loads the shared inputs from ``DATA.npz``
(written by ``speed.py``: uint8 images, ink = 1, with the pair and task indices both sides use),
prints ``@@keras {json}`` when ready, then reads one JSON request per line on stdin
(``{"op": "measure", "metrics": [...], "settings": {...}}`` or ``{"op": "quit"}``) and answers
each with one ``@@keras {json}`` line of timings in seconds. Any other output (TensorFlow's
logging) is ignored by ``speed.py``.

A stand-alone smoke check, no data needed: ``.venv-bench/bin/python benchmarks/keras_peer.py
--selftest`` (builds the model, one training step and one evaluation on random images).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _common import timed  # noqa: E402 (stdlib only: no torch or oneshot in this venv)

SIZE = 105
EMBED_DIM = 4096
LR = 6e-5
L2_CONV = 2e-4
L2_DENSE = 1e-3
W_STD = 1e-2
B_MEAN, B_STD = 0.5, 1e-2
PREFIX = "@@keras "


def configure_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads and one inter-op pool thread (call before any op runs)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def versions() -> dict:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "backend": keras.backend.backend(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86 Linux)"),
            "python": sys.version.split()[0]}


def build_model(seed: int = 0):
    """(siamese, encoder): the compiled twin network and its shared encoder.

    siamese: inputs [(B, 105, 105, 1), (B, 105, 105, 1)] float32 ink = 1 -> (B, 1) probability
    of "same character"; encoder: (B, 105, 105, 1) -> (B, 4096).
    """
    import keras
    from keras import layers, regularizers

    def w_init(k):
        return keras.initializers.RandomNormal(0.0, W_STD, seed=seed + k)

    def b_init(k):
        return keras.initializers.RandomNormal(B_MEAN, B_STD, seed=seed + 100 + k)

    def conv(filters, size, k):
        return layers.Conv2D(filters, size, activation="relu", kernel_initializer=w_init(k),
                             bias_initializer=b_init(k),
                             kernel_regularizer=regularizers.l2(L2_CONV))

    image = keras.Input((SIZE, SIZE, 1), name="image")
    x = conv(64, 10, 0)(image)
    x = layers.MaxPooling2D()(x)
    x = conv(128, 7, 1)(x)
    x = layers.MaxPooling2D()(x)
    x = conv(128, 4, 2)(x)
    x = layers.MaxPooling2D()(x)
    x = conv(256, 4, 3)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(EMBED_DIM, activation="sigmoid", kernel_initializer=w_init(4),
                     bias_initializer=b_init(4),
                     kernel_regularizer=regularizers.l2(L2_DENSE))(x)
    encoder = keras.Model(image, x, name="encoder")

    class AbsDifference(layers.Layer):
        """[a, b] -> |a - b| elementwise: the L1 distance before its learned weights."""

        def call(self, inputs):
            a, b = inputs
            return keras.ops.abs(a - b)

        def compute_output_shape(self, input_shape):
            return input_shape[0]

    left = keras.Input((SIZE, SIZE, 1), name="left")
    right = keras.Input((SIZE, SIZE, 1), name="right")
    distance = AbsDifference()([encoder(left), encoder(right)])
    prob = layers.Dense(1, activation="sigmoid", bias_initializer=b_init(5))(distance)
    siamese = keras.Model([left, right], prob, name="siamese")
    siamese.compile(optimizer=keras.optimizers.Adam(learning_rate=LR),
                    loss="binary_crossentropy", jit_compile=False)
    return siamese, encoder


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8/float (B, 105, 105) ink = 1 -> float32 (B, 105, 105, 1) (Keras is channels-last)."""
    return np.asarray(images, dtype=np.float32)[..., None]


def train_step(siamese, xa: np.ndarray, xb: np.ndarray, target: np.ndarray) -> float:
    """One optimisation step on a batch of pairs; returns the loss (BCE + L2 penalties)."""
    return float(np.asarray(siamese.train_on_batch([xa, xb], target.reshape(-1, 1))).ravel()[0])


def embed(encoder, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """float32 (B, 4096) embeddings of float32 (B, 105, 105, 1) images."""
    return encoder.predict(x, batch_size=batch, verbose=0)


def evaluate_tutorial_way(siamese, x: np.ndarray, query: np.ndarray,
                          support: np.ndarray) -> np.ndarray:
    """float32 (T, N) scores: per task, one ``predict`` over its N (query, candidate) pairs.

    x: float32 (M, 105, 105, 1); query int (T,) and support int (T, N) index into x.
    """
    T, N = support.shape
    out = np.empty((T, N), np.float32)
    for t in range(T):
        pairs = [np.repeat(x[query[t]][None], N, axis=0), x[support[t]]]
        out[t] = siamese.predict(pairs, verbose=0).ravel()
    return out


def evaluate_cache_way(siamese, encoder, x: np.ndarray, query: np.ndarray,
                       support: np.ndarray) -> np.ndarray:
    """float32 (T, N) scores: every distinct image embedded once, then the head in numpy."""
    used, inverse = np.unique(np.concatenate([query, support.ravel()]), return_inverse=True)
    emb = embed(encoder, x[used])
    w, b = siamese.layers[-1].get_weights()
    q = emb[inverse[: len(query)]][:, None, :]
    c = emb[inverse[len(query):]].reshape(*support.shape, -1)
    logits = np.abs(q - c) @ w[:, 0] + b[0]
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def _measure_one(siamese, encoder, data: dict, metric: str, settings: dict) -> dict:
    warm, steps = settings["warmup_steps"], settings["train_steps"]
    if metric.startswith("train_b"):
        B = int(metric[len("train_b"):])
        a, b, t = data[f"pairs_{B}_a"], data[f"pairs_{B}_b"], data[f"pairs_{B}_t"]
        xa, xb = to_input(data["train_images"][a]), to_input(data["train_images"][b])
        for i in range(warm):
            train_step(siamese, xa[i], xb[i], t[i])
        sec, _ = timed(lambda: [train_step(siamese, xa[i], xb[i], t[i])
                                for i in range(warm, warm + steps)])
        return {"seconds": sec, "count": steps * B}
    if metric == "embed":
        x, batch = data["embed_images"], settings["embed_batch"]
        embed(encoder, to_input(x[:batch]), batch)
        sec, _ = timed(lambda: embed(encoder, to_input(x), batch))
        return {"seconds": sec, "count": len(x)}
    if metric in ("eval_tutorial", "eval_cache"):
        x = to_input(data["task_images"])
        q, s = data["task_query"], data["task_support"]
        evaluate_tutorial_way(siamese, x, q[:1], s[:1])  # trace predict once
        embed(encoder, x[:1])
        fn = evaluate_tutorial_way if metric == "eval_tutorial" else evaluate_cache_way
        args = (siamese, x, q, s) if metric == "eval_tutorial" else (siamese, encoder, x, q, s)
        sec, scores = timed(lambda: fn(*args))
        acc = float((scores.argmax(1) == data["task_answer"]).mean())
        return {"seconds": sec, "count": len(q), "accuracy": acc}
    return {"error": f"metric {metric!r} not measured by the Keras peer"}


def measure(data: dict, metrics: list[str], settings: dict, seed: int = 0) -> dict:
    """Time the requested metrics on a fresh model. Returns {metric: {"seconds": s, "count": n}}
    (``count`` pairs, images or tasks done in ``seconds``), warm-up excluded."""
    import keras

    keras.backend.clear_session()
    siamese, encoder = build_model(seed)
    return {m: _measure_one(siamese, encoder, data, m, settings) for m in metrics}


def _emit(obj: dict) -> None:
    sys.stdout.write(PREFIX + json.dumps(obj) + "\n")
    sys.stdout.flush()


def worker(data_path: str, threads: int) -> None:
    configure_threads(threads)
    with np.load(data_path) as z:
        data = {k: z[k] for k in z.files}
    _emit({"ready": True, "versions": versions(), "threads": threads})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        try:
            _emit({"results": measure(data, req["metrics"], req["settings"],
                                      req.get("seed", 0))})
        except Exception as e:  # report, keep serving: the parent decides what to do
            _emit({"error": f"{type(e).__name__}: {e}"})


def selftest(threads: int) -> None:
    configure_threads(threads)
    rng = np.random.default_rng(0)
    siamese, encoder = build_model()
    n_params = siamese.count_params()
    x = to_input(rng.random((6, SIZE, SIZE)) < 0.1)
    loss = train_step(siamese, x[:2], x[2:4], np.array([1.0, 0.0], np.float32))
    scores = evaluate_tutorial_way(siamese, x, np.array([0]), np.array([[1, 2, 3, 4, 5]]))
    cached = evaluate_cache_way(siamese, encoder, x, np.array([0]), np.array([[1, 2, 3, 4, 5]]))
    print(json.dumps({"versions": versions(), "parameters": n_params, "loss": loss,
                      "max_abs_diff_tutorial_vs_cache": float(np.abs(scores - cached).max())}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", metavar="DATA.npz", help="serve measurements (see docstring)")
    p.add_argument("--selftest", action="store_true", help="build, one step, one evaluation")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.threads)
    elif args.selftest:
        selftest(args.threads)
    else:
        p.error("give --worker DATA.npz or --selftest")


if __name__ == "__main__":
    main()
