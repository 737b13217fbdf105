"""one_ahead: results in order, the next item's work beside the caller's, lazy items, errors at their item."""

import threading
from contextlib import nullcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omni_caption.pipelines.ahead import one_ahead


@given(st.lists(st.integers()))
def test_results_come_in_order_once_each(items):
    assert list(one_ahead(items, lambda x: x * 2, "test")) == [x * 2 for x in items]


def test_the_next_item_runs_while_the_caller_holds_this_one():
    started_next = threading.Event()

    def work(item):
        if item == 1:
            started_next.set()
        return item, threading.current_thread().name

    results = []
    for item, thread in one_ahead([0, 1], work, "worker"):
        if item == 0:  # the caller is still busy with item 0: item 1 must already be running
            assert started_next.wait(timeout=10)
        results.append(thread)
    assert all(name.startswith("worker") for name in results)


def test_items_are_taken_lazily_after_the_current_one_is_done():
    limit = [3]
    taken = []

    def batches():
        for i in range(4):
            taken.append(limit[0])
            yield i

    for i in one_ahead(batches(), lambda x: x, "lazy"):
        if i == 0:
            limit[0] = 1  # learnt while handling item 0: item 1 was already taken, item 2 sees it
    assert taken == [3, 3, 1, 1]


def test_an_error_reaches_the_caller_at_its_item():
    def work(item):
        if item == 2:
            raise ValueError("bad item")
        return item

    got = []
    with pytest.raises(ValueError, match="bad item"):
        for result in one_ahead(range(5), work, "errors"):
            got.append(result)
    assert got == [0, 1]


@pytest.mark.parametrize("how", ["break", "error", "done"])
def test_on_leave_is_called_only_when_the_caller_leaves_early(how):
    left = []
    results = one_ahead(range(4), lambda x: x, "leave", on_leave=lambda: left.append(True))
    with pytest.raises(RuntimeError) if how == "error" else nullcontext():
        for item in results:
            if item == 1 and how == "break":
                break
            if item == 1 and how == "error":
                raise RuntimeError("the model failed")
    results.close()  # what CPython does at once when the loop's frame lets go of the generator
    assert left == ([] if how == "done" else [True])



def test_the_first_items_work_starts_before_the_caller_asks_for_it():
    started = threading.Event()
    results = one_ahead([0, 1], lambda x: started.set() or x, "eager")
    assert started.wait(timeout=10)  # the caller has not called next() yet: it is loading a model meanwhile
    assert list(results) == [0, 1]


def test_an_iterator_dropped_unread_stops_its_work_and_waits_for_it():
    finished = []
    stop = threading.Event()

    def work(item):
        stop.wait(timeout=30)  # long work that ends early once told to stop
        finished.append(item)
        return item

    results = one_ahead([0, 1], work, "dropped", on_leave=stop.set)
    results.close()  # the caller failed before reading anything (its model did not load)
    assert finished == [0]  # told to stop, then waited for: no thread is left working
