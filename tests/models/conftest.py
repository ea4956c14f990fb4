import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf


@pytest.fixture(autouse=True)
def restore_precision_policy():
    """Every test leaves the global Keras mixed-precision policy as it found it."""
    previous = tf.keras.mixed_precision.global_policy()
    yield
    tf.keras.mixed_precision.set_global_policy(previous)
