"""silero on CPU runs on one torch thread of its caller's, and leaves every thread's count as it was."""

from __future__ import annotations

import threading

import numpy as np
import torch

from omni_caption.pipelines.vad import SileroVad


def test_cpu_vad_uses_one_thread_while_it_runs_and_puts_the_count_back():
    vad = SileroVad(device="cpu")
    real_forward = vad.model.audio_forward
    seen = []

    def counting_forward(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_forward(*args, **kwargs)

    vad.model.audio_forward = counting_forward
    main_before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        in_worker = []

        def worker():
            torch.set_num_threads(2)
            vad.frame_probabilities(np.zeros(16000, dtype=np.float32), np.zeros(0, dtype=np.float32))
            in_worker.append(torch.get_num_threads())

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert seen == [1] and in_worker == [2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(main_before)
