"""Training hyperparameters: one frozen :class:`TrainConfig` (the ``--batch_size`` ... flags)."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

EMBEDDING_OPTIMIZERS = ("adagrad", "adam")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (independent of which model and which data)."""

    batch_size: int = 0                      # global batch size (split across replicas); 0: auto (recipe.py)
    eval_batch_size: int = 0                 # 0: same as batch_size
    learning_rate: float = 1e-3              # Adam, dense weights
    embedding_learning_rate: float = 0.05    # embedding tables
    embedding_optimizer: str = "adagrad"     # adagrad | adam
    adagrad_initial_accumulator: float = 0.1
    warmup_steps: int = 0                    # linear learning-rate warm-up over this many steps; 0: none
    clip_norm: float = 10.0                  # global-norm gradient clipping; 0 disables
    precision: str = "auto"                  # auto | float32 | mixed_float16 | mixed_bfloat16
    strategy: str = "auto"                   # auto | default | mirrored | multi_worker
    epochs: int = 20                         # batch mode: at most this many passes over train/
    early_stopping_patience: int = 2         # batch mode: stop after N rounds without a better valid AUC; 0: off
    train_steps: int = 0                     # batch mode: stop after this many steps in total; 0: no cap
    eval_steps: int = 0                      # evaluate on at most this many batches; 0: all
    deterministic: bool = False              # fixed data order and op determinism
    seed: int = 0
    shuffle: bool = True                     # batch mode: shuffle train/ (files and records)
    shuffle_buffer: int = 0                  # records; 0: 4 batches
    log_every: int = 100                     # progress line + TensorBoard every N steps
    keep_checkpoints: int = 3                # CheckpointManager max_to_keep

    def __post_init__(self) -> None:
        def fail(name: str, msg: str) -> None:
            raise ValueError(f"train config: {name}: {msg}")

        for name in ("epochs", "log_every", "keep_checkpoints"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(name, f"expected a positive int, got {value!r}")
        for name in ("batch_size", "eval_batch_size", "train_steps", "eval_steps", "shuffle_buffer", "seed",
                     "early_stopping_patience", "warmup_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                fail(name, f"expected an int >= 0, got {value!r}")
        for name in ("learning_rate", "embedding_learning_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                fail(name, f"expected a positive number, got {value!r}")
        if not isinstance(self.clip_norm, (int, float)) or self.clip_norm < 0:
            fail("clip_norm", f"expected a number >= 0 (0 disables clipping), got {self.clip_norm!r}")
        if self.adagrad_initial_accumulator <= 0:
            fail("adagrad_initial_accumulator", f"expected a positive number, got {self.adagrad_initial_accumulator!r}")
        if self.embedding_optimizer not in EMBEDDING_OPTIMIZERS:
            fail("embedding_optimizer", f"expected one of {'|'.join(EMBEDDING_OPTIMIZERS)}, "
                                        f"got {self.embedding_optimizer!r}")
        if self.strategy not in STRATEGIES:
            fail("strategy", f"expected one of {'|'.join(STRATEGIES)}, got {self.strategy!r}")
        from infnet_tf.precision import PRECISIONS  # light: no TensorFlow work at import time

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
