"""Keep AutoGraph away from code that needs no conversion.

Inside a ``tf.function``, AutoGraph transpiles every Python function it cannot prove harmless.
Two costly cases for us, each tens of seconds on a 2-core machine at the first trace:

* **tf_keras itself.** TensorFlow 2.16's AutoGraph rules exempt ``keras`` but not ``tf_keras``
  (the Keras 2 package we run), so ``Layer.__call__`` and its helpers were transpiled.
  Importing this module adds a ``DoNotConvert("tf_keras")`` rule, the same treatment ``keras``
  gets.
* **Our layers' ``call``.** Keras converts the ``call`` of user-defined layers. Ours have no
  data-dependent Python control flow; :func:`no_autograph` marks them (it is
  ``tf.autograph.experimental.do_not_convert`` with the wrapped argspec kept visible to Keras,
  which inspects ``call`` for a ``training`` argument).
"""
from __future__ import annotations

import infnet_tf  # noqa: F401
import tensorflow as tf
from tensorflow.python.autograph.core import config as _autograph_config
from tensorflow.python.autograph.core import config_lib as _autograph_config_lib


def _exempt_tf_keras() -> None:
    rules = _autograph_config.CONVERSION_RULES
    if not any(isinstance(r, _autograph_config_lib.DoNotConvert) and r.matches("tf_keras") for r in rules):
        _autograph_config.CONVERSION_RULES = (_autograph_config_lib.DoNotConvert("tf_keras"),) + tuple(rules)


_exempt_tf_keras()


def no_autograph(fn):
    return tf.__internal__.decorator.make_decorator(fn, tf.autograph.experimental.do_not_convert(fn))
