"""One item ahead: the next item's work runs in a worker thread while the caller uses this one."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Done = TypeVar("Done")


def one_ahead(items: Iterable[Item], work: Callable[[Item], Done], name: str,
              on_leave: Callable[[], None] | None = None) -> Generator[Done, None, None]:
    """`work(item)` for each item, in order, each computed while the caller handles the one before.

    The first item's work starts at once, before the first `next`, so it also runs beside whatever the
    caller does first (the local engine loads the stage's model while the first group is segmented).
    The next item is taken from `items` only once the current one is done, so a lazy `items` can
    still react to what the caller learnt (e.g. a batch limit lowered after an OOM). torch, torchcodec
    and the tokenizers release the GIL in their heavy parts, so the worker really runs beside the
    caller's GPU work. An error raised by `work` reaches the caller at that item.

    A caller that leaves early (an error, Ctrl-C, or dropping the iterator unread) waits for the item
    being worked on: `on_leave` is called first, to tell long work to stop (the segmenter's is minutes of
    decoding on a CPU).
    """
    results = _one_ahead(items, work, name, on_leave)
    next(results)  # submits the first item; from here, closing the generator runs its clean-up
    return results


def _one_ahead(items: Iterable[Item], work: Callable[[Item], Done], name: str,
               on_leave: Callable[[], None] | None) -> Generator[Done | None, None, None]:
    pending = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        try:
            future = _submit_next(pool, work, pending)
            yield None  # started: one_ahead takes this, the caller never sees it
            while future is not None:
                done = future.result()
                future = _submit_next(pool, work, pending)
                yield done
        except BaseException:  # GeneratorExit included: the caller is gone, or Ctrl-C came while waiting
            if on_leave is not None:
                on_leave()
            raise


def _submit_next(pool: ThreadPoolExecutor, work, pending: Iterator) -> Future | None:
    item = next(pending, _END)
    return None if item is _END else pool.submit(work, item)


_END = object()
