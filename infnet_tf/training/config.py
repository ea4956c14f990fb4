"""Training hyperparameters: one frozen :class:`TrainConfig`; each field is a ``python -m infnet_tf.train``
flag with the help text given in its :func:`~infnet_tf.config_flags.setting`."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from infnet_tf.config_flags import setting

EMBEDDING_OPTIMIZERS = ("adagrad", "adam")
OUTPUT_BIAS_INITS = ("prior", "zero")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "parameter_server")
AUTO_WEIGHT_AVERAGE = -1.0   # weight_average_decay: the recipe sizes the window (infnet_tf/training/recipe.py)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (independent of which model and which data)."""

    batch_size: int = setting(0, "Global batch size (split across replicas; paper: 4096); 0: chosen from the train "
                                 "rows (infnet_tf/training/recipe.py: 1024 for 16k-328k rows, 4096 from 655k).")
    eval_batch_size: int = setting(0, "Evaluation batch size; 0: --batch_size.")
    learning_rate: float = setting(1e-3, "Adam learning rate of the dense weights.")
    embedding_learning_rate: float = setting(0.05, (
        "Learning rate of the embedding tables' optimizer. Measured (bench/REPORT.md rounds 5, 13), 0.1 against "
        "0.05, mean test AUC of INFNet / DCNv2 / shared bottom: 20k train rows -0.0004 / -0.0004 / -0.0009 (0.15 "
        "and more lose), 43k +0.003 / +0.004 / 0.000, 171k +0.002 / 0.000 / +0.002; one-block INFNet (round 17): "
        "20k -0.002, 43k +0.001, 171k +0.002: worth a try on larger logs."))
    embedding_optimizer: str = setting("adagrad", choices=EMBEDDING_OPTIMIZERS, help=(
        "Optimizer of the embedding tables (dense weights always use Adam)."))
    adagrad_initial_accumulator: float = setting(0.1, "Initial accumulator value of the embedding Adagrad.")
    warmup_steps: int = setting(0, "Linear learning-rate warm-up over this many steps (both optimizers); 0: none.")
    clip_norm: float = setting(10.0, "Clip gradients to this global norm; 0 disables clipping.")
    weight_average_decay: float = setting(AUTO_WEIGHT_AVERAGE, help=(
        "Evaluate, select the best checkpoint with and export an exponential moving average of the weights, "
        "updated every step with this decay (min(decay, (1 + step) / (10 + step))). -1 (default): a window of "
        "about one epoch, 1 - 1/steps per epoch from the train rows and the batch size, at least 0.95 (0.95 in "
        "streaming mode or when the train rows are unknown; infnet_tf/training/recipe.py). 0: off (the trained "
        "weights as they are; also with --strategy=parameter_server, which does not support it yet). Measured "
        "(bench/REPORT.md rounds 6, 7, 12): averaging lifts INFNet +0.002 mean test AUC on a real log with a 3x "
        "smaller seed sd; 0.95 (one epoch there) beat 0.9 and 0.98 at ~20 steps per epoch; a one-epoch "
        "window beat 0.95 for all 5 models at 168 steps per epoch (+0.0005 to +0.0027) and was within noise "
        "at 42 (DCNv2 -0.002)."))
    weight_average_embeddings: bool = setting(True, help=(
        "With --weight_average_decay: average the embedding tables too (measured: about half of the gain). Turn "
        "off for tables much larger than the dense weights (e.g. on parameter servers): their average doubles "
        "their memory and costs a pass over every table per step."))
    output_bias_init: str = setting("zero", choices=OUTPUT_BIAS_INITS, help=(
        "zero: Keras' zeros; prior: before a new model's first step, each task head's output bias is set to the "
        "logit of the task's positive rate in the first training batch (Laplace-smoothed); with "
        "--head_output_scale=0.1 training starts at the base-rate loss (fewer epochs, not more accuracy: "
        "bench/REPORT.md). Replicas and multi_worker workers count their first batches together (one "
        "all-reduce); not applied when a run resumes, nor under parameter_server with --train_steps (the "
        "workers read their own batches)."))
    precision: str = setting("auto", choices=PRECISIONS, help=(
        "auto: mixed_float16 on GPU, float32 on CPU. Softmax, LayerNorm, loss and outputs stay float32. "
        "mixed_bfloat16 on a CPU with native bfloat16 (AVX512_BF16 / AMX): INFNet's defaults trained 1.3x "
        "faster per step, 1.14-1.27x per run, at the same test AUC on an AMD EPYC (bench/REPORT.md); no gain "
        "on an earlier Intel AMX machine, so measure (bench.model_efficiency --compare_bf16)."))
    strategy: str = setting("auto", choices=STRATEGIES, help=(
        "tf.distribute strategy. auto: parameter_server when TF_CONFIG names ps tasks, multi_worker with a "
        "multi-worker TF_CONFIG, mirrored with >1 GPU, else default. multi_worker / parameter_server read the "
        "cluster from TF_CONFIG (python -m infnet_tf.cluster starts a local one)."))
    ps_shards: int = setting(0, help=(
        "parameter_server: at most this many shards per variable (embedding tables first); 0: one per PS task."))
    ps_min_shard_bytes: int = setting(256 << 10, help=(
        "parameter_server: MinSizePartitioner's smallest shard in bytes (smaller variables stay whole); 0: "
        "FixedShardsPartitioner, every variable in --ps_shards shards."))
    epochs: int = setting(20, help=(
        "Batch mode: passes over train/ (with --train_steps: the number of evaluation rounds the steps are split "
        "into)."))
    early_stopping_patience: int = setting(2, help=(
        "Batch mode: stop after this many evaluation rounds without a better mean valid AUC; 0: off."))
    train_steps: int = setting(0, help=(
        "Batch mode: train exactly this many global steps over repeated train/ data; 0: --epochs full passes."))
    eval_steps: int = setting(0, "Evaluate on at most this many batches; 0: all.")
    cache_valid_mb: int = setting(1024, help=(
        "Batch mode: keep valid/ in memory, parsed, after the first round evaluates it when it needs at most this "
        "many MB (the manifests' rows times the padded row size), so every later round evaluates it without "
        "reading and parsing the files again (measured: a valid/ evaluation of 2,941 rows 0.31-0.37 s -> "
        "0.12-0.15 s on 2 CPU cores, bench/REPORT.md); "
        "0: read it every round. Not with --eval_steps."))
    deterministic: bool = setting(False, help=(
        "Fixed data order (seeded shuffles, ordered interleave) and TensorFlow op determinism; slower."))
    seed: int = setting(0, "Random seed (weights initialisation and data shuffling).")
    shuffle: bool = setting(True, "Batch mode: shuffle train/ files and records.")
    shuffle_buffer: int = setting(0, "Record shuffle buffer; 0: 4 batches.")
    log_every: int = setting(100, "Print a progress line and write TensorBoard training scalars every N steps.")
    keep_checkpoints: int = setting(3, "Number of recent checkpoints kept.")

    def __post_init__(self) -> None:
        def fail(name: str, msg: str) -> None:
            raise ValueError(f"train config: {name}: {msg}")

        for name in ("epochs", "log_every", "keep_checkpoints"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(name, f"expected a positive int, got {value!r}")
        for name in ("batch_size", "eval_batch_size", "train_steps", "eval_steps", "shuffle_buffer", "seed",
                     "early_stopping_patience", "warmup_steps", "ps_shards", "ps_min_shard_bytes", "cache_valid_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                fail(name, f"expected an int >= 0, got {value!r}")
        for name in ("learning_rate", "embedding_learning_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                fail(name, f"expected a positive number, got {value!r}")
        if not isinstance(self.clip_norm, (int, float)) or self.clip_norm < 0:
            fail("clip_norm", f"expected a number >= 0 (0 disables clipping), got {self.clip_norm!r}")
        if (not isinstance(self.weight_average_decay, (int, float)) or isinstance(self.weight_average_decay, bool)
                or not (0 <= self.weight_average_decay < 1 or self.weight_average_decay == AUTO_WEIGHT_AVERAGE)):
            fail("weight_average_decay",
                 f"expected a number in [0, 1) (0: off) or -1 (automatic), got {self.weight_average_decay!r}")
        if self.adagrad_initial_accumulator <= 0:
            fail("adagrad_initial_accumulator", f"expected a positive number, got {self.adagrad_initial_accumulator!r}")
        if self.embedding_optimizer not in EMBEDDING_OPTIMIZERS:
            fail("embedding_optimizer", f"expected one of {'|'.join(EMBEDDING_OPTIMIZERS)}, "
                                        f"got {self.embedding_optimizer!r}")
        if self.output_bias_init not in OUTPUT_BIAS_INITS:
            fail("output_bias_init", f"expected one of {'|'.join(OUTPUT_BIAS_INITS)}, got {self.output_bias_init!r}")
        if self.strategy not in STRATEGIES:
            fail("strategy", f"expected one of {'|'.join(STRATEGIES)}, got {self.strategy!r}")
        if self.precision not in PRECISIONS:
            fail("precision", f"expected one of {'|'.join(PRECISIONS)}, got {self.precision!r}")

    @property
    def effective_eval_batch_size(self) -> int:
        return self.eval_batch_size or max(self.batch_size, 1024)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, ignore_unknown: bool = False) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown and not ignore_unknown:
            raise ValueError(f"train config: unknown field(s) {unknown}; expected one of {sorted(names)}")
        return cls(**{k: v for k, v in d.items() if k in names})
