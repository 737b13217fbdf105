"""Keep transformers' own warnings and bars out of the user's terminal."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def quiet_transformers():
    # Shipped configs carry rope keys the 5.x validator warns about, and the
    # weight loading/saving bars would interleave with our own progress bar.
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        hf_logging.enable_progress_bar()
