"""StartedInput: a pass's iterator and first batch fetched on a thread; the batches unchanged."""
import threading

import pytest

import infnet_tf  # noqa: F401
import tensorflow as tf

from infnet_tf.training.started_input import StartedInput


def test_the_first_element_is_fetched_before_iteration_and_every_element_comes_in_order():
    fetched = threading.Event()

    def make_iterator():
        for i, value in enumerate(tf.data.Dataset.range(5).as_numpy_iterator()):
            if i == 0:
                fetched.set()
            yield int(value)

    started = StartedInput(None, make_iterator)
    assert fetched.wait(timeout=30), "the first element was not fetched on the background thread"
    assert list(started) == [0, 1, 2, 3, 4]
    assert list(started) == []          # one pass: the iterator is handed over once


def test_an_empty_input_yields_nothing():
    assert list(StartedInput(None, lambda: iter(()))) == []


def test_a_start_error_is_raised_where_the_batches_are_iterated():
    def make_iterator():
        raise tf.errors.DataLossError(None, None, "corrupted record at 12")

    started = StartedInput(None, make_iterator)     # nothing raised here, on the caller's thread
    with pytest.raises(tf.errors.DataLossError, match="corrupted record"):
        list(started)


def test_close_waits_for_the_start_and_drops_the_iterator():
    release = threading.Event()

    def make_iterator():
        release.wait(timeout=30)
        return iter([1, 2])

    started = StartedInput(None, make_iterator)
    threading.Timer(0.2, release.set).start()     # the start is still blocked when close() is called
    started.close()
    assert not started._thread.is_alive()
    assert list(started) == []
