"""Keeps Triton's interpreter (``TRITON_INTERPRET=1``, how the CPU tests run the kernels) working in two
situations that break it; compiled kernels are not affected.

NOTE 1: the interpreter is chosen when a function is decorated with ``@triton.jit``. When the variable
is set only after ``triton`` was first imported (transformers imports it, so a pytest run that collects
other test modules first does), ``triton.language``'s own jitted helpers (``tl.max``, ``tl.sum``,
``tl.zeros``, ``tl.cdiv``, ...) were built for the compiler and refuse to run inside an interpreted
kernel. ``interpret_triton_language`` rebuilds them as interpreted functions, and ours in
``pagedllm.pdl`` and ``fused_ops`` (which kernels call through the module, so they see the rebuilt one).

NOTE 2: before Triton 3.9 the interpreter turns a runtime loop bound (``tl.range(start, end)``) into a
Python int with ``int()`` on a one-element array, which NumPy >= 2.4 refuses. ``fix_scalar_index``
makes that conversion go through a 0-d array.
"""

from __future__ import annotations

import os

import numpy as np
import triton


def is_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def prepare_interpreter() -> None:
    if is_interpreting():
        interpret_triton_language()
        fix_scalar_index()


def interpret_triton_language() -> None:
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    from pagedllm import pdl
    from pagedllm.model.layers import fused_ops

    rebuilt: dict[int, InterpretedFunction] = {}
    for namespace in (tl, tl.standard, tl.math, tl.core, tl.core.tensor, pdl, fused_ops):
        for name, value in list(vars(namespace).items()):
            if isinstance(value, JITFunction):
                if id(value) not in rebuilt:
                    rebuilt[id(value)] = InterpretedFunction(value.fn)
                setattr(namespace, name, rebuilt[id(value)])


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = version.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def fix_scalar_index() -> None:
    if _major_minor(triton.__version__) >= (3, 9) or _major_minor(np.__version__) < (2, 4):
        return
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor
    if getattr(original, "_pagedllm_fixed", False):
        return

    def patched(tensor, scope):  # type: ignore[no-untyped-def]
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(())))

    patched._pagedllm_fixed = True  # type: ignore[attr-defined]
    interpreter._patch_lang_tensor = patched
