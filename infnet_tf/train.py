r"""Train a ranking model: ``python -m infnet_tf.train --data=DIR --model_dir=DIR --mode=batch|streaming``.

The model-input layout comes from the dataset job's transform artifact
(``<data>/transform/transform_artifact.json``); ``--spec`` is optional and, when given, must be the
spec the data was built from (its fingerprint is checked against the artifact's).

  batch:      epochs (or --train_steps) over train/, evaluation on valid/ each epoch, the best
              checkpoint by mean valid AUC, final evaluation on test/, <model_dir>/metrics.json.
  streaming:  partition by partition over train/ (test-then-train), checkpoint + exact resume,
              periodic SavedModel export; --follow keeps polling for new partitions.

Examples:
  python -m infnet_tf.train --data=/data/kuairand --model_dir=/models/run1 --mode=batch --epochs=3
  python -m infnet_tf.train --data=s3://bucket/kuairand --model_dir=s3://bucket/models/run1 \
      --mode=streaming --follow --export_every=4
"""
from __future__ import annotations

import dataclasses
import json
import sys

import infnet_tf  # noqa: F401  (Keras 2 selection before TensorFlow)
from absl import flags

from infnet_tf.models.config import CHOICES, ModelConfig
from infnet_tf.models.presets import PRESET_NAMES, preset_changes
from infnet_tf.training.config import EMBEDDING_OPTIMIZERS, STRATEGIES, TrainConfig

FLAGS = flags.FLAGS
_PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")

# -- job -----------------------------------------------------------------------------------------
flags.DEFINE_string("data", None, "Dataset job output directory (local, s3://, hdfs://) holding "
                    "{train,valid,test}/dt=... partitions and transform/transform_artifact.json.")
flags.DEFINE_string("model_dir", None, "Where checkpoints, TensorBoard logs (tensorboard/), "
                    "metrics.json and trainer_config.json go (local or object store).")
flags.DEFINE_string("spec", None, "Optional feature spec YAML; if given, its fingerprint must match "
                    "the transform artifact's spec_fingerprint (guards against mixing datasets).")
flags.DEFINE_enum("mode", "batch", ["batch", "streaming"], "batch: epochs over train/ with "
                  "valid/test evaluation; streaming: test-then-train partition by partition.")

# -- model (ModelConfig fields) ------------------------------------------------------------------
_MODEL_HELP = {
    "model": "Registered model to train (infnet, or a baseline such as shared_bottom, deepfm, dcnv2, "
             "mmoe, ple, all_to_all).",
    "d": "Token width d (paper default 64).",
    "num_blocks": "Number of INFNet blocks L (paper default 4).",
    "num_heads": "Attention heads per attention (must divide d).",
    "n_cat_hubs": "Number of categorical hubs n_c (paper default 16).",
    "n_shared_task_hubs": "Number of shared task hubs n_shared (paper default 4).",
    "cat_hub_hidden": "Hidden widths of the categorical hub MLP (eq. 1), comma-separated.",
    "seq_hub_hidden": "Hidden widths of the per-type sequence hub MLPs (eq. 3), comma-separated.",
    "bgu_hidden": "Hidden widths of the BGU MLP (eq. 8), comma-separated.",
    "head_hidden": "Hidden widths of each task head MLP (eq. 11), comma-separated.",
    "ffn_mult": "FFN width multiple of self-attention blocks (hubs=off / all_to_all).",
    "dropout": "Dropout rate in [0, 1).",
    "sequence_combiner": "How item and side-information embeddings of a sequence position combine.",
    "task_tokens": "Ablation: on|off. off removes the task tokens T (heads read a shared representation).",
    "hubs": "Ablation: on|off. off is all-to-all self-attention over [C; S; T] (quadratic reference).",
    "aggregation": "Ablation: on|off. off drops Phase 1 (hubs keep their initial value).",
    "broadcast": "Ablation: on|off. off drops Phase 2 (the BGU broadcast to the tokens).",
    "cat_hub_init": "Categorical hub initialisation: mlp (eq. 1), mean of field chunks, or random.",
    "seq_hub_init": "Sequence hub initialisation: type_mlp (eq. 3), global_mean, or random.",
    "fusion": "Fusion of the three attention views (eq. 7).",
    "task_hubs": "Task hub group (eq. 4): hybrid = T + shared, specific = T only, shared only.",
    "broadcast_unit": "Broadcast unit: affine (eq. 9), scale, shift, or the v1 Proxy Gated Unit (pgu).",
    "options": "JSON object of baseline-specific options, e.g. '{\"projection_dim\": 64}'. "
               "shared_bottom: bottom_hidden=256,128. deepfm: deep_hidden=256,128. dcnv2: cross_layers=3, "
               "projection_dim=auto (low rank n/4; null = full rank), deep_hidden=256,128, "
               "structure=stacked|parallel. mmoe: num_experts=4, expert_hidden=256,128. ple: num_levels=2, "
               "num_task_experts=1, num_shared_experts=1, expert_hidden=256,128. (WORKSPACE.md: Model options)",
    "token_norm": "Beyond the paper: on|off. on: LayerNorm of every view's tokens before its K/V "
                  "projections and of the hubs before the Q projection (pre-norm).",
    "embedding_init_std": "Beyond the paper: 0 = Keras' U(-0.05, 0.05) embedding initialisation; "
                          "> 0: truncated normal with this standard deviation.",
    "readout": "Beyond the paper: what each task head reads: task_token (t_i, eq. 11) or "
               "task_token_hubs (t_i and the mean of every hub group).",
}
_MODEL_FLAG_NAME = {"options": "model_options"}  # field -> flag name where the field name is taken


def _define_model_flags() -> None:
    for field in dataclasses.fields(ModelConfig):
        name = _MODEL_FLAG_NAME.get(field.name, field.name)
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = _MODEL_HELP.get(field.name, f"ModelConfig.{field.name}.")
        if field.name in CHOICES:
            flags.DEFINE_enum(name, default, list(CHOICES[field.name]), help_text)
        elif isinstance(default, bool):
            flags.DEFINE_enum(name, "on" if default else "off", ["on", "off"], help_text)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, default, help_text)
        elif isinstance(default, float):
            flags.DEFINE_float(name, default, help_text)
        elif isinstance(default, tuple):
            flags.DEFINE_string(name, ",".join(str(v) for v in default), help_text)
        elif field.name == "options":
            flags.DEFINE_string(name, "{}", help_text)
        else:
            flags.DEFINE_string(name, default, help_text)


_define_model_flags()
flags.DEFINE_enum("preset", "default", list(PRESET_NAMES), "Named model settings (infnet_tf/models/presets.py): "
                  "default = the recommended INFNet; paper = the paper-exact INFNet (token_norm=off, "
                  "embedding_init_std=0, readout=task_token); or one ablation row of bench.report "
                  "(e.g. no_hubs, fusion_sum). Model flags given explicitly override the preset.")

# -- training (TrainConfig fields) ---------------------------------------------------------------
# The dataclass defaults, read without constructing a TrainConfig: its validation imports
# TensorFlow, and flags are defined (and --help answered) before TensorFlow loads.
_D = dataclasses.make_dataclass(
    "TrainDefaults", [(f.name, object, f.default) for f in dataclasses.fields(TrainConfig)])()
flags.DEFINE_integer("batch_size", _D.batch_size, "Global batch size (split across replicas; paper: 4096)"
                     + ("; 0: chosen automatically." if _D.batch_size == 0 else "."))
flags.DEFINE_integer("eval_batch_size", _D.eval_batch_size, "Evaluation batch size; 0: --batch_size.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Adam learning rate of the dense weights.")
flags.DEFINE_float("embedding_learning_rate", _D.embedding_learning_rate,
                   "Learning rate of the embedding tables' optimizer.")
flags.DEFINE_enum("embedding_optimizer", _D.embedding_optimizer, list(EMBEDDING_OPTIMIZERS),
                  "Optimizer of the embedding tables (dense weights always use Adam).")
flags.DEFINE_float("adagrad_initial_accumulator", _D.adagrad_initial_accumulator,
                   "Initial accumulator value of the embedding Adagrad.")
flags.DEFINE_integer("warmup_steps", _D.warmup_steps, "Linear learning-rate warm-up over this many "
                     "steps (both optimizers); 0: none.")
flags.DEFINE_integer("early_stopping_patience", _D.early_stopping_patience, "Batch mode: stop after this "
                     "many evaluation rounds without a better mean valid AUC; 0: off.")
flags.DEFINE_float("clip_norm", _D.clip_norm, "Clip gradients to this global norm; 0 disables clipping.")
flags.DEFINE_enum("precision", _D.precision, list(_PRECISIONS), "auto: mixed_float16 on GPU, "
                  "float32 on CPU. Softmax, LayerNorm, loss and outputs stay float32.")
flags.DEFINE_enum("strategy", _D.strategy, list(STRATEGIES), "tf.distribute strategy. auto: "
                  "multi_worker with a multi-worker TF_CONFIG, mirrored with >1 GPU, else default.")
flags.DEFINE_integer("epochs", _D.epochs, "Batch mode: passes over train/ (with --train_steps: "
                     "the number of evaluation rounds the steps are split into).")
flags.DEFINE_integer("train_steps", _D.train_steps, "Batch mode: train exactly this many global "
                     "steps over repeated train/ data; 0: --epochs full passes.")
flags.DEFINE_integer("eval_steps", _D.eval_steps, "Evaluate on at most this many batches; 0: all.")
flags.DEFINE_bool("deterministic", _D.deterministic, "Fixed data order (seeded shuffles, ordered "
                  "interleave) and TensorFlow op determinism; slower.")
flags.DEFINE_integer("seed", _D.seed, "Random seed (weights initialisation and data shuffling).")
flags.DEFINE_bool("shuffle", _D.shuffle, "Batch mode: shuffle train/ files and records.")
flags.DEFINE_integer("shuffle_buffer", _D.shuffle_buffer, "Record shuffle buffer; 0: 4 batches.")
flags.DEFINE_integer("log_every", _D.log_every, "Print a progress line and write TensorBoard "
                     "training scalars every N steps.")
flags.DEFINE_integer("keep_checkpoints", _D.keep_checkpoints, "Number of recent checkpoints kept.")

# -- streaming (run_streaming keyword arguments; defaults = StreamingConfig's, kept equal by a test) --
flags.DEFINE_bool("follow", False, "Streaming: keep polling train/ for new partitions after the "
                  "last one (stop with SIGTERM/SIGINT; the current partition's checkpoint finishes first).")
flags.DEFINE_float("poll_interval_s", 60.0, "Streaming --follow: seconds between polls for new partitions.")
flags.DEFINE_integer("export_every", 0, "Streaming: export a SavedModel version every N trained "
                     "partitions (Kafka: chunks); 0: never.")
flags.DEFINE_string("export_base", None, "Streaming: export base directory (versions go to "
                    "<export_base>/<model_name>/<version>); default <model_dir>/export.")
flags.DEFINE_string("model_name", "infnet", "Streaming: model name in the export path and the TF "
                    "Serving model config.")
flags.DEFINE_enum("source", "files", ["files", "kafka"], "Streaming input: files = train/ "
                  "partitions; kafka = serialized tf.Examples from a Kafka topic.")
flags.DEFINE_string("kafka_servers", "", "Kafka bootstrap servers (host:port[,host:port]).")
flags.DEFINE_string("kafka_topic", "", "Kafka topic of serialized tf.Examples (--source=kafka).")
flags.DEFINE_string("kafka_group", "infnet-trainer", "Kafka consumer group; offsets are committed "
                    "only after the checkpoint that covers them.")
flags.DEFINE_float("kafka_timeout_s", 10.0, "Kafka: seconds to wait for the broker and the group "
                   "join; an unreachable broker fails after this instead of reading as an empty stream.")
flags.DEFINE_integer("kafka_chunk_messages", 100_000, "Kafka: messages per chunk (a chunk is trained, "
                     "checkpointed and committed like a partition).")
flags.DEFINE_string("kafka_config", "", "Kafka: extra librdkafka consumer settings, "
                    "key=value,key=value (e.g. security.protocol=SSL).")
flags.DEFINE_integer("max_partitions", 0, "Streaming: stop after training this many partitions "
                     "(Kafka: chunks) in this run; 0: no limit.")

# -- the model dir ------------------------------------------------------------------------------
flags.DEFINE_bool("overwrite_model_dir", False, "Start over: delete what an earlier run left in "
                  "--model_dir (checkpoints, TensorBoard logs, state, metrics, trainer_config.json; "
                  "<model_dir>/export is kept) before training. Without it, a --model_dir whose "
                  "trainer_config.json records other model-shaping settings is refused (exit 2).")

flags.mark_flags_as_required(["data", "model_dir"])

STREAMING_FLAGS = ("follow", "poll_interval_s", "export_every", "export_base", "model_name", "source",
                   "kafka_servers", "kafka_topic", "kafka_group", "kafka_timeout_s", "kafka_chunk_messages",
                   "kafka_config", "max_partitions")


class JobError(Exception):
    """A problem with the job's inputs, reported as one clear line."""


# -- resuming a model dir ------------------------------------------------------------------------
# A model dir holds one model: its checkpoints only restore into the same variables. Settings that
# shape the variables — every ModelConfig field except dropout and embedding_init_std (no variables;
# initialisation only), the embedding optimizer (its slots), moving to or from mixed_float16 (loss
# scaling wraps the optimizer, which changes the checkpoint's object graph) and the data's
# model-input layout — must equal those recorded in <model_dir>/trainer_config.json. Settings that
# only steer training may change when a run resumes: batch sizes, learning rates, warm-up, clipping,
# epochs / steps, early stopping, seeds, shuffling, logging, kept checkpoints, the distribution
# strategy, float32 <-> mixed_bfloat16 (variables stay float32).
CONFIG_FILE = "trainer_config.json"
RESUMABLE_MODEL_FIELDS = ("dropout", "embedding_init_std")  # no variables / initialisation only
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


def config_differences(recorded: dict, layout_dict: dict, model_config: ModelConfig,
                       train_config: TrainConfig, precision: str | None = None) -> list[str]:
    """``name: old -> new`` for each model-shaping setting that differs from a recorded
    ``trainer_config.json`` payload (empty: the model dir can be resumed with these settings).
    ``precision``: the resolved policy of this run (``auto`` resolved), compared with the recorded one."""
    diffs = []
    old_model = recorded.get("model_config") or {}
    for name, new in model_config.to_dict().items():
        if name in RESUMABLE_MODEL_FIELDS or name not in old_model:
            continue
        old = old_model[name]
        if _show(old) != _show(new):
            diffs.append(f"{_MODEL_FLAG_NAME.get(name, name)}: {_show(old)} -> {_show(new)}")
    old_train = recorded.get("train_config") or {}
    for name in SHAPING_TRAIN_FIELDS:
        new = getattr(train_config, name)
        if name in old_train and _show(old_train[name]) != _show(new):
            diffs.append(f"{name}: {_show(old_train[name])} -> {_show(new)}")
    old_precision = recorded.get("precision")
    if precision and old_precision and (old_precision == "mixed_float16") != (precision == "mixed_float16"):
        diffs.append(f"precision: {old_precision} -> {precision}")
    old_layout = recorded.get("layout")
    layout_dict = json.loads(json.dumps(layout_dict))  # as recorded: tuples become lists
    if old_layout is not None and old_layout != layout_dict:
        keys = sorted(k for k in set(old_layout) | set(layout_dict) if old_layout.get(k) != layout_dict.get(k))
        diffs.append(f"data layout ({', '.join(keys)}): the --data was built differently")
    return diffs


def _join(*parts: str) -> str:
    return "/".join(p.rstrip("/") for p in parts)


def read_recorded_config(model_dir: str) -> dict | None:
    """The ``trainer_config.json`` an earlier run left in ``model_dir`` (None: a fresh model dir)."""
    import tensorflow as tf

    from infnet_tf.partitions import ensure_filesystem

    ensure_filesystem(model_dir)
    path = _join(model_dir, CONFIG_FILE)
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

    from infnet_tf.partitions import ensure_filesystem

    ensure_filesystem(model_dir)
    if not tf.io.gfile.isdir(model_dir):
        return []
    removed = []
    for name in sorted(tf.io.gfile.listdir(model_dir)):
        name = name.rstrip("/")
        if name in KEEP_ON_OVERWRITE:
            continue
        path = _join(model_dir, name)
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
        removed.append(name)
    return removed


def model_config_from_flags() -> ModelConfig:
    """The ModelConfig of the flags: the ``--preset``'s settings, overridden by flags given explicitly."""
    preset = preset_changes(FLAGS.preset)
    values = {}
    for f in dataclasses.fields(ModelConfig):
        flag = FLAGS[_MODEL_FLAG_NAME.get(f.name, f.name)]
        values[f.name] = preset[f.name] if f.name in preset and not flag.present else flag.value
    return ModelConfig.from_flags_dict(values)


def train_config_from_flags() -> TrainConfig:
    return TrainConfig(**{f.name: FLAGS[f.name].value for f in dataclasses.fields(TrainConfig)})


def check_spec(spec_path: str, artifact: dict, artifact_where: str) -> None:
    """Fail unless the spec's fingerprint equals the artifact's ``spec_fingerprint``."""
    from infnet_tf.spec import load_spec

    spec = load_spec(spec_path)
    expected = artifact.get("spec_fingerprint")
    if not expected:
        raise JobError(f"--spec={spec_path}: the transform artifact {artifact_where} records no "
                       f"spec_fingerprint, so the spec cannot be checked against the data")
    if spec.fingerprint() != expected:
        raise JobError(f"--spec={spec_path} (fingerprint {spec.fingerprint()[:12]}) is not the spec the "
                       f"data in {artifact_where} was built from (fingerprint {str(expected)[:12]}); "
                       f"rebuild the dataset or pass the matching spec")


def final_streaming_evaluation(trainer, data_dir: str, summary: dict) -> None:
    """After a streaming run has caught up: evaluate on valid/ and test/, write metrics.json."""
    from infnet_tf.training.evaluation import evaluate_split, write_metrics

    result = {"mode": "streaming", "model_dir": trainer.model_dir, "data": data_dir,
              "streaming": summary, "model_config": trainer.model_config.to_dict(),
              "train_config": trainer.config.to_dict()}
    for split in ("valid", "test"):
        result[split] = evaluate_split(trainer, data_dir, split)
    path = write_metrics(trainer, result)
    if path:
        print(f"train: wrote {path}", flush=True)


def main(argv) -> int:
    if len(argv) > 1:
        raise flags.Error(f"unexpected arguments: {' '.join(argv[1:])}")
    from infnet_tf.features import FeatureLayout
    from infnet_tf.input import artifact_path, load_artifact
    from infnet_tf.partitions import DataError
    from infnet_tf.training import recipe
    from infnet_tf.training.trainer import NonFiniteLossError, Trainer

    try:
        artifact = load_artifact(FLAGS.data)
        if FLAGS.spec:
            check_spec(FLAGS.spec, artifact, artifact_path(FLAGS.data))
        layout = FeatureLayout.from_dict(artifact["layout"])
        model_config = model_config_from_flags()
        train_config = recipe.resolve(train_config_from_flags(), FLAGS.data)
        if FLAGS.overwrite_model_dir:
            removed = clear_model_dir(FLAGS.model_dir)
            if removed:
                print(f"train: --overwrite_model_dir: removed {', '.join(removed)} from {FLAGS.model_dir}",
                      flush=True)
        else:
            check_model_dir(FLAGS.model_dir, layout.to_dict(), model_config, train_config)
    except (JobError, ValueError, FileNotFoundError) as exc:
        print(f"train: error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"train: mode {FLAGS.mode}, data {FLAGS.data}, model_dir {FLAGS.model_dir}", flush=True)
    try:
        trainer = Trainer(layout, model_config, train_config, FLAGS.model_dir)
        if FLAGS.mode == "batch":
            from infnet_tf.training.batch import run_batch

            run_batch(trainer, FLAGS.data)
        else:
            from infnet_tf.training.streaming import JOB_ERRORS, run_streaming

            try:
                summary = run_streaming(trainer, FLAGS.data,
                                        **{name: FLAGS[name].value for name in STREAMING_FLAGS})
            except JOB_ERRORS as exc:
                raise JobError(str(exc)) from exc
            if FLAGS.source == "files" and not FLAGS.follow and summary.get("caught_up"):
                final_streaming_evaluation(trainer, FLAGS.data, summary)
            elif FLAGS.source == "files" and not FLAGS.follow:
                print(f"train: stopped before catching up ({summary.get('stop_reason')}); no final "
                      f"evaluation and no metrics.json - run the same command again to continue", flush=True)
    except NonFiniteLossError as exc:
        print(f"train: error: {exc}", file=sys.stderr, flush=True)
        return 3
    except (JobError, FileNotFoundError, DataError) as exc:
        print(f"train: error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    from infnet_tf.env import run_main

    run_main(main)
