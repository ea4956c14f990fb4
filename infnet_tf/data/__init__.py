"""The data contract: one home for what every reader and writer of the dataset must agree on.

=====================  ===================================================================
``layout``             :class:`FeatureLayout`: the model's inputs and their id spaces
``keys``               the key schema of Examples and model inputs; ``MISSING_LABEL``
``tensors``            its TensorFlow views: parsing spec, input signature, placeholders
``dataset_dir``        the dataset directory layout: splits, ``dt=`` partitions, file names
``partitions``         complete partitions and their ``_SUCCESS`` manifests
``artifact``           :func:`artifact.load`: the typed transform artifact
``fs``                 the one filesystem helper (local, ``s3://``, ``hdfs://``, ``gs://``)
``errors``             :class:`DataError` and its kinds (CLIs exit 2 on them)
=====================  ===================================================================

Nothing here imports TensorFlow at import time, nor ``pipelines``, ``export`` or ``bench``.
"""
