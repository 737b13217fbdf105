"""A decode step whose torch.compile fails (no C++ compiler, as in a runtime container) runs uncompiled."""

import pytest

from omni_caption.model import Prompt, generate_batch
from omni_caption.model.compiled_step import CompiledOrEager
from omni_caption.model.decode_engine import EngineOptions, StaticDecoder
from omni_caption.model.refill_engine import RefillDecoder, RefillOptions
from tests.model.test_refill_engine import GREEDY, alone, assert_same, six_clips


@pytest.fixture
def no_cxx_compiler():
    """Inductor as on a machine without g++ (a debootstrapped Debian, an nvidia/cuda runtime image)."""
    import torch._dynamo
    import torch._inductor.config

    torch._dynamo.reset()
    with torch._inductor.config.patch({"cpp.cxx": ("no-such-g++",)}):
        yield
    torch._dynamo.reset()


@pytest.mark.parametrize("engine", ["refill", "static"])
def test_a_step_that_cannot_compile_warns_once_and_decodes_the_same_tokens(tiny, no_cxx_compiler, engine):
    # It stopped the run with Inductor's InvalidCxxCompiler traceback.
    audios = six_clips()[:4]
    reference = alone(tiny, audios, Prompt(), GREEDY)
    if engine == "refill":
        decoder = RefillDecoder(tiny.model.thinker, RefillOptions(length_quantum=64, compile=True, min_cache_len=192))
        run = lambda: generate_batch(tiny, audios, Prompt(), GREEDY, decoder=decoder, slots=2)  # noqa: E731
    else:
        decoder = StaticDecoder(tiny.model.thinker, EngineOptions(compile=True))
        run = lambda: generate_batch(tiny, audios, Prompt(), GREEDY, decoder=decoder)  # noqa: E731
    with pytest.warns(RuntimeWarning, match="runs uncompiled .* install gcc and g\\+\\+ .*InvalidCxxCompiler"):
        assert_same(reference, run())
    assert isinstance(decoder._step, CompiledOrEager) and decoder._step.compiled is None
    assert_same(reference, run())  # uncompiled from then on, without trying (or warning) again


def test_an_error_of_the_step_itself_is_not_taken_for_a_compile_failure(monkeypatch):
    def broken(*_args):
        raise ValueError("a bug in the step")

    step = CompiledOrEager(broken)
    with pytest.raises(ValueError, match="a bug in the step"):
        step()
    assert step.compiled is not None and step.failure is None
