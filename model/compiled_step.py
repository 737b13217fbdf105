"""The engines' decode step under torch.compile (CUDA graphs), or the same step uncompiled where compiling fails.

torch.compile fails only at the first call, and then for reasons of the machine, not the model: Inductor needs a
C++ compiler on a CPU and Triton a C compiler and Python's headers on a GPU, which a runtime container (an
`nvidia/cuda:*-runtime` image) lacks. A run then decodes uncompiled (slower, the same tokens) rather than
stopping with a compiler's traceback.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable


def compile_failure(exc: BaseException) -> bool:
    """Whether `exc` is torch.compile failing to build the step (its code never ran, so nothing was written)."""
    from torch._dynamo.exc import BackendCompilerFailed
    from torch._inductor.exc import InductorError

    return isinstance(exc, (BackendCompilerFailed, InductorError))


class CompiledOrEager:
    """Calls the compiled step; if its compile fails, warns once and calls the eager step from then on."""

    def __init__(self, eager: Callable, **compile_options):
        import torch

        self.eager = eager
        self.compiled: Callable | None = torch.compile(eager, **compile_options)
        self.failure: str | None = None  # why compiling failed, once it has

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except Exception as exc:
                if not compile_failure(exc):
                    raise
                self.compiled, self.failure = None, " ".join(str(exc).split())[:300]
                warnings.warn(f"torch.compile could not build the decode step, so it runs uncompiled (no CUDA "
                              f"graphs: slower, same tokens); install gcc and g++ to compile it: {self.failure}",
                              RuntimeWarning, stacklevel=2)
        return self.eager(*args)
