"""A model dir holds one model: refuse to resume it with other model-shaping settings, or clear it.

``trainer_config.json`` (written by the Trainer) records the settings a model dir was trained with;
:func:`check_model_dir` compares a new run's settings with it, :func:`clear_model_dir` is
``--overwrite_model_dir``.
"""
from __future__ import annotations

import json

from infnet_tf.config_flags import flag_names
from infnet_tf.data import fs
from infnet_tf.models.config import ModelConfig
from infnet_tf.training.config import TrainConfig
from infnet_tf.training.job import JobError

MODEL_FLAG_NAME = flag_names(ModelConfig)  # ModelConfig field -> its flag name (shown in differences)


# -- resuming a model dir ------------------------------------------------------------------------
# A model dir holds one model: its checkpoints only restore into the same variables. Settings that
# shape the variables — every ModelConfig field the model reads (``register_model(reads=...)``: a
# baseline ignores INFNet's fields) except dropout, id_dropout, embedding_init_std and
# head_output_scale (no variables; initialisation only), the embedding optimizer (its slots), moving
# to or from mixed_float16 (loss scaling wraps the optimizer, which changes the checkpoint's object
# graph) and the data's model-input layout — must equal those recorded in
# <model_dir>/trainer_config.json. Settings that only steer training may change when a run resumes:
# batch sizes, learning rates, warm-up, clipping, epochs / steps, early stopping, seeds, shuffling,
# logging, kept checkpoints, the distribution strategy, float32 <-> mixed_bfloat16 (variables stay
# float32).
CONFIG_FILE = "trainer_config.json"
RESUMABLE_MODEL_FIELDS = ("dropout", "embedding_init_std", "id_dropout",   # no variables / initialisation only
                          "head_output_scale")
# Fields added after model dirs already existed: a recorded config without one was trained with this value.
FIELDS_ADDED_LATER = {"ordinal_encoding": "none", "seq_hub_views": "all", "cat_hub_views": "all"}
SHAPING_TRAIN_FIELDS = ("embedding_optimizer",)
KEEP_ON_OVERWRITE = ("export",)


def _show(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "''"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _ordinal(value, model: str):
    """``ordinal_encoding`` ``value`` as model ``model``'s tokenizer uses it (``auto`` resolved)."""
    from infnet_tf.models import ordinal_choice

    return ModelConfig(model=model, ordinal_encoding=value).tokenizer_ordinal(ordinal_choice(model))


def config_differences(recorded: dict, layout_dict: dict, model_config: ModelConfig,
                       train_config: TrainConfig, precision: str | None = None) -> list[str]:
    """``name: old -> new`` for each model-shaping setting that differs from a recorded
    ``trainer_config.json`` payload (empty: the model dir can be resumed with these settings). Model
    fields the model does not read (the registry's ``reads``) are not compared.
    ``precision``: the resolved policy of this run (``auto`` resolved), compared with the recorded one."""
    from infnet_tf.models import get_entry

    diffs = []
    old_model = recorded.get("model_config") or {}
    entry = get_entry(model_config.model)
    for name, new in model_config.to_dict().items():
        if name in RESUMABLE_MODEL_FIELDS or (name not in old_model and name not in FIELDS_ADDED_LATER):
            continue
        if not entry.reads_field(name):   # e.g. num_blocks for a baseline: cannot change its variables
            continue
        old = old_model.get(name, FIELDS_ADDED_LATER.get(name))
        if name == "ordinal_encoding":   # auto and the encoding it stands for are the same model
            old, new = _ordinal(old, old_model.get("model", model_config.model)), _ordinal(new, model_config.model)
        if _show(old) != _show(new):
            diffs.append(f"{MODEL_FLAG_NAME.get(name, name)}: {_show(old)} -> {_show(new)}")
    old_train = recorded.get("train_config") or {}
    for name in SHAPING_TRAIN_FIELDS:
        new = getattr(train_config, name)
        if name in old_train and _show(old_train[name]) != _show(new):
            diffs.append(f"{name}: {_show(old_train[name])} -> {_show(new)}")
    old_precision = recorded.get("precision")
    if precision and old_precision and (old_precision == "mixed_float16") != (precision == "mixed_float16"):
        diffs.append(f"precision: {old_precision} -> {precision}")
    old_layout = _comparable_layout(recorded.get("layout"))
    layout_dict = _comparable_layout(json.loads(json.dumps(layout_dict)))  # as recorded: tuples become lists
    if old_layout is not None and old_layout != layout_dict:
        keys = sorted(k for k in set(old_layout) | set(layout_dict) if old_layout.get(k) != layout_dict.get(k))
        diffs.append(f"data layout ({', '.join(keys)}): the --data was built differently")
    return diffs


def _comparable_layout(layout: dict | None) -> dict | None:
    """A recorded layout without the ``ordinal`` marks: they are derived from the artifact on load
    (older model dirs recorded layouts without them), not a difference in the data."""
    if layout is None:
        return None
    return {**layout, "categorical": [{k: v for k, v in f.items() if k != "ordinal"}
                                       for f in layout.get("categorical", [])]}


def read_recorded_config(model_dir: str) -> dict | None:
    """The ``trainer_config.json`` an earlier run left in ``model_dir`` (None: a fresh model dir)."""
    import tensorflow as tf

    fs.ensure_filesystem(model_dir)
    path = fs.join(model_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        try:
            return json.loads(f.read())
        except ValueError as exc:
            raise JobError(f"{path} is not valid JSON ({exc}); pass --overwrite_model_dir to start over "
                           f"or use a new --model_dir") from None


def check_model_dir(model_dir: str, layout_dict: dict, model_config: ModelConfig,
                    train_config: TrainConfig) -> None:
    """Refuse (JobError, before anything is written) a model dir trained with other model-shaping
    settings: one line naming each difference and what to do."""
    recorded = read_recorded_config(model_dir)
    if recorded is None:
        return
    from infnet_tf.precision import resolve_precision

    diffs = config_differences(recorded, layout_dict, model_config, train_config,
                               resolve_precision(train_config.precision))
    if diffs:
        raise JobError(f"--model_dir={model_dir} holds a model trained with other settings "
                       f"({'; '.join(diffs)}); pass the old values to resume it, use a new --model_dir for "
                       f"the new settings, or add --overwrite_model_dir to delete that model and start over")


def clear_model_dir(model_dir: str) -> list[str]:
    """--overwrite_model_dir: delete an earlier run's files (all but ``export/``); returns their names."""
    import tensorflow as tf

    fs.ensure_filesystem(model_dir)
    if not tf.io.gfile.isdir(model_dir):
        return []
    removed = []
    for name in sorted(tf.io.gfile.listdir(model_dir)):
        name = name.rstrip("/")
        if name in KEEP_ON_OVERWRITE:
            continue
        path = fs.join(model_dir, name)
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
        removed.append(name)
    return removed
