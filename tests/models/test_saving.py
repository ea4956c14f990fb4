"""Save / reload gives identical predictions: tf.saved_model with a serving signature, Keras
``model.save`` + ``load_model`` (rebuilt from get_config), Keras weights."""
import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.models import build_model
from infnet_tf.models.infnet import INFNet
from tests.models.tiny import random_batch, tiny_config, tiny_layout

LAYOUT = tiny_layout(n_types=1)


def _assert_same(a, b, atol=0.0):
    """Equal predictions; a traced graph may differ from eager execution by float rounding."""
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=0, atol=atol)


def test_save_and_reload_give_identical_predictions(tmp_path):
    model = build_model(LAYOUT, tiny_config(num_blocks=1))
    batch = random_batch(LAYOUT, 3, seed=7)
    expected = model(batch)

    # 1. tf.saved_model.save: a module tracking the variables, with an explicit serving signature
    spec = {k: tf.TensorSpec([None] + list(v.shape[1:]), v.dtype, name=k.replace("/", "__"))
            for k, v in batch.items()}
    module = tf.Module()
    module.variables_ = list(model.variables)
    module.serve = tf.function(lambda features: model(features), input_signature=[spec])
    tf.saved_model.save(module, str(tmp_path / "sm"),
                        signatures={"serving_default": module.serve.get_concrete_function()})
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    _assert_same(expected, loaded.signatures["serving_default"](**{k.replace("/", "__"): v
                                                                  for k, v in batch.items()}), atol=1e-6)

    # 2. Keras SavedModel: load_model rebuilds the model from get_config and restores the weights
    model.save(str(tmp_path / "keras_sm"), save_traces=False)
    reloaded = tf.keras.models.load_model(str(tmp_path / "keras_sm"))
    assert isinstance(reloaded, INFNet) and reloaded.model_config == model.model_config
    _assert_same(expected, reloaded(batch))

    # 3. Keras weights into a freshly built model
    model.save_weights(str(tmp_path / "ckpt"))
    fresh = build_model(LAYOUT, tiny_config(num_blocks=1))
    fresh.load_weights(str(tmp_path / "ckpt")).assert_existing_objects_matched()
    _assert_same(expected, fresh(batch))


def test_get_config_round_trip_of_the_model():
    model = build_model(LAYOUT, tiny_config(broadcast_unit="pgu"))
    clone = INFNet.from_config(model.get_config())
    assert clone.layout == model.layout and clone.model_config == model.model_config
