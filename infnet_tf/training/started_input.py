"""A training pass's input, started on a background thread before the pass begins.

A batch-mode round is a training pass, a checkpoint and a valid evaluation. Before a pass's first
step its input pipeline starts: the iterator is created (tf.data's graph rewrite), the interleave
opens the files, the record shuffle buffer fills and the first batch is parsed. On 2 cores that is
~0.2 s, ~10% of a 20-step epoch of the real KuaiRand dev log. :class:`StartedInput` does it on a
thread while the previous round checkpoints and evaluates (both mostly single-threaded Python and
file I/O, and the TensorFlow ops involved release the GIL), so the pass starts on a ready batch.

Nothing about the pass changes: the same dataset (built on the caller's thread, with the same
seeds) yields the same batches in the same order; only their start moves earlier. An error in the
start (a corrupt file, say) is raised where the batches are iterated, as it was before.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

_END = object()


class StartedInput:
    """An iterable of batches whose iterator and first element are fetched on a daemon thread from
    construction on. ``element_spec`` is the dataset's; iterate it once. :meth:`close` waits for the
    thread and drops the iterator (a pass that will not run)."""

    def __init__(self, element_spec: Any, make_iterator: Callable[[], Iterator]):
        self.element_spec = element_spec
        self._iterator: Iterator | None = None
        self._first: Any = _END
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, args=(make_iterator,), name="infnet-next-input",
                                        daemon=True)
        self._thread.start()

    def _start(self, make_iterator: Callable[[], Iterator]) -> None:
        try:
            self._iterator = make_iterator()
            self._first = next(self._iterator, _END)
        except BaseException as e:   # noqa: BLE001 - re-raised on the iterating thread
            self._error = e

    def __iter__(self) -> Iterator:
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        iterator, first = self._iterator, self._first
        self._iterator, self._first = None, _END
        if first is _END:
            return
        yield first
        yield from iterator

    def close(self) -> None:
        self._thread.join()
        self._iterator, self._first, self._error = None, _END, None
