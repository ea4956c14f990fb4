"""One training job as the ``python -m infnet_tf.train`` command runs it: check the inputs, train
(batch or streaming), write the final metrics. The entry module parses the flags into the configs
and passes them here, with the streaming export hook it builds (the library imports no serving code).

Exit statuses of :func:`run`: 0 done, 2 bad inputs (one ``train: error:`` line), 3 a non-finite loss.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infnet_tf.transform import TransformArtifact

EXIT_BAD_INPUT = 2
EXIT_NON_FINITE = 3


class JobError(Exception):
    """A problem with the job's inputs, reported as one clear line."""


@dataclasses.dataclass(frozen=True)
class JobPaths:
    """Where a training job reads and writes (the flags that are no config field)."""

    data: str                         # the dataset job's output directory
    model_dir: str                    # checkpoints, TensorBoard logs, metrics.json, trainer_config.json
    spec: str | None = None           # optional feature spec, checked against the artifact's fingerprint
    mode: str = "batch"               # batch | streaming
    overwrite_model_dir: bool = False


def check_spec(spec_path: str, artifact: "TransformArtifact", artifact_where: str) -> None:
    """Fail unless the spec's fingerprint equals the artifact's ``spec_fingerprint``."""
    from infnet_tf.feature_spec import load_spec

    spec = load_spec(spec_path)
    expected = artifact.spec_fingerprint
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


def _error(exc: BaseException) -> None:
    print(f"train: error: {exc}", file=sys.stderr, flush=True)


def run(paths: JobPaths, model_config, train_config, streaming_config=None, export_hook=None) -> int:
    """Run one training job; returns its exit status (see the module docstring).

    ``model_config``, ``train_config``: a :class:`~infnet_tf.models.config.ModelConfig` /
    :class:`~infnet_tf.training.config.TrainConfig`, or a callable
    that builds it (so that its ``ValueError`` is reported like any other bad input).
    ``streaming_config``: the :class:`~infnet_tf.training.streaming.StreamingConfig` (streaming mode), or
    a callable that builds it.
    ``export_hook``: ``hook(trainer, unit_key)``, called every ``streaming_config.export_every`` units.
    """
    from infnet_tf.data import artifact as artifact_lib
    from infnet_tf.data.dataset_dir import artifact_path
    from infnet_tf.data.errors import DataError
    from infnet_tf.training import recipe
    from infnet_tf.training.distribution import serve_if_server_task
    from infnet_tf.training.model_dir import check_model_dir, clear_model_dir
    from infnet_tf.training.trainer import NonFiniteLossError, Trainer

    try:
        train_config = train_config() if callable(train_config) else train_config
        if serve_if_server_task(train_config.strategy):  # a parameter_server worker/ps task: serves
            return 0                                      # until it is stopped (never gets here)
        artifact = artifact_lib.load(paths.data)
        if paths.spec:
            check_spec(paths.spec, artifact, artifact_path(paths.data))
        layout = artifact.feature_layout
        model_config = model_config() if callable(model_config) else model_config
        train_config = recipe.resolve(train_config, paths.data, mode=paths.mode)
        if paths.overwrite_model_dir:
            removed = clear_model_dir(paths.model_dir)
            if removed:
                print(f"train: --overwrite_model_dir: removed {', '.join(removed)} from {paths.model_dir}",
                      flush=True)
        else:
            check_model_dir(paths.model_dir, layout.to_dict(), model_config, train_config)
    except (JobError, ValueError, FileNotFoundError) as exc:
        _error(exc)
        return EXIT_BAD_INPUT
    print(f"train: mode {paths.mode}, data {paths.data}, model_dir {paths.model_dir}", flush=True)
    try:
        trainer = Trainer(layout, model_config, train_config, paths.model_dir)
        if paths.mode == "batch":
            from infnet_tf.training.batch import run_batch

            run_batch(trainer, paths.data)
        else:
            _run_streaming(trainer, paths.data, streaming_config, export_hook)
    except NonFiniteLossError as exc:
        _error(exc)
        return EXIT_NON_FINITE
    except (JobError, FileNotFoundError, DataError) as exc:
        _error(exc)
        return EXIT_BAD_INPUT
    return 0


def _run_streaming(trainer, data: str, config, export_hook) -> None:
    from infnet_tf.training.streaming import JOB_ERRORS, StreamingConfig, run_streaming

    try:
        config = config() if callable(config) else (config or StreamingConfig())
        summary = run_streaming(trainer, data, config, export_hook=export_hook)
    except JOB_ERRORS as exc:
        raise JobError(str(exc)) from exc
    if config.source == "files" and not config.follow and summary.get("caught_up"):
        final_streaming_evaluation(trainer, data, summary)
    elif config.source == "files" and not config.follow:
        print(f"train: stopped before catching up ({summary.get('stop_reason')}); no final "
              f"evaluation and no metrics.json - run the same command again to continue", flush=True)

