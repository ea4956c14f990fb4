"""infnet_tf: the INFNet library (spec, transform, input, layers, models, training).

Importing this package sets ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is first imported, so
``tf.keras`` is tf_keras 2.16 (TFRS needs Keras 2). Every entry point imports ``infnet_tf``
(or ``infnet_tf.env``) before TensorFlow.
"""
from infnet_tf import env as _env  # noqa: F401  (side effect: Keras 2 selection)
