"""Training jobs: the :class:`~infnet_tf.training.trainer.Trainer` and the batch / streaming modes.

``config`` (TrainConfig), ``distribution`` (--strategy), ``optimizers`` (dense Adam + embedding
Adagrad/Adam through TFRS's CompositeOptimizer), ``summaries`` (TensorBoard), ``trainer`` (custom
distributed train step, evaluation, checkpoints), ``batch`` (epochs over train/valid/test),
``coordinated`` (parameter-server steps scheduled by a ClusterCoordinator), ``local_cluster`` (the
processes of ``python -m infnet_tf.cluster``).
"""
