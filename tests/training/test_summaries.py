"""TensorBoard summaries: images drawn on a background thread, written before ``flush`` returns."""
import glob
import os
import subprocess
import sys
import threading

import numpy as np

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.training.summaries import SummaryWriter, heatmap_png


def _tags_and_steps(logdir):
    found = []
    for path in glob.glob(os.path.join(logdir, "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            found.extend((v.tag, event.step) for v in event.summary.value)
    return found


def _png(rows=2, cols=3):
    matrix = np.arange(rows * cols, dtype=np.float64).reshape(rows, cols) / (rows * cols)
    return heatmap_png(matrix, [f"r{i}" for i in range(rows)], [f"c{j}" for j in range(cols)], title="t")


def test_an_image_is_drawn_off_the_calling_thread_and_written_before_flush_returns(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    release, drawn_on, finished = threading.Event(), [], []

    def render():
        drawn_on.append(threading.current_thread())
        release.wait(30)            # a synchronous image_later would return only after this times out
        finished.append(True)
        return _png()

    writer.image_later("valid/attention", render, step=7)   # returns while the drawing is blocked
    assert not finished
    release.set()
    writer.flush()
    assert drawn_on and drawn_on[0] is not threading.current_thread()
    assert ("valid/attention", 7) in _tags_and_steps(str(tmp_path))


def test_flush_waits_for_every_image_handed_over(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    for step in range(3):
        writer.image_later("test/attention", lambda: _png(), step=step)
    writer.flush()
    assert sorted(s for t, s in _tags_and_steps(str(tmp_path)) if t == "test/attention") == [0, 1, 2]


def test_a_failed_drawing_is_reported_and_the_next_image_still_written(tmp_path, capsys):
    writer = SummaryWriter(str(tmp_path))

    def broken():
        raise RuntimeError("no font")

    writer.image_later("valid/attention", broken, step=3)
    writer.image_later("valid/attention", lambda: None, step=4)    # render's "no image": nothing written
    writer.image_later("valid/attention", lambda: _png(), step=5)
    writer.flush()
    assert "summaries: image valid/attention at step 3 not written: RuntimeError: no font" in capsys.readouterr().err
    assert [s for t, s in _tags_and_steps(str(tmp_path)) if t == "valid/attention"] == [5]


def test_a_disabled_writer_draws_nothing(tmp_path):
    writer = SummaryWriter(str(tmp_path), enabled=False)
    called = []
    writer.image_later("valid/attention", lambda: called.append(1) or _png(), step=1)
    writer.flush()
    assert not called and not os.listdir(tmp_path)


def test_a_heat_map_is_drawn_without_pyplot_global_state():
    """pyplot's figure registry is shared by every thread; the background drawing must not use it."""
    code = ("import sys, numpy as np\n"
            "from infnet_tf.training.summaries import heatmap_png\n"
            "png = heatmap_png(np.eye(2), ['a', 'b'], ['c', 'd'])\n"
            "print(png.startswith(b'\\x89PNG'), 'matplotlib.pyplot' in sys.modules)\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root, MPLBACKEND="")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["True", "False"]
