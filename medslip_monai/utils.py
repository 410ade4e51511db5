# Copyright (c) 2026 medslip-monai contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Process-level settings: CPU memory allocation, TensorBoard writing under torch.distributed."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

__all__ = ["tune_cpu_allocator", "summary_writer"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_cpu_allocator(mmap_threshold: int = 1 << 30, trim_threshold: int = 2**31 - 1, top_pad: int = 1 << 28) -> bool:
    """Let glibc keep freed activation memory for reuse instead of returning it to the system after every step.

    With glibc's defaults every activation larger than the mmap threshold is a fresh ``mmap`` whose pages fault in
    again at each training step; on CPU that costs a fifth of a ResNet-50 step at batch 8 and more at larger batches
    (``scripts/bench.py``). Numbers do not change. Returns ``True`` when applied, ``False`` where the C library is
    not glibc (macOS, Windows, musl), in which case nothing is done.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    settings = ((_M_MMAP_THRESHOLD, mmap_threshold), (_M_TRIM_THRESHOLD, trim_threshold), (_M_TOP_PAD, top_pad))
    return all(mallopt(option, value) == 1 for option, value in settings)


class _SilentWriter:
    """Stands in for a ``SummaryWriter`` on the ranks that must not write: every method does nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def summary_writer(log_dir: str) -> Any:
    """A TensorBoard ``SummaryWriter`` on rank 0 (or outside ``torch.distributed``); on other ranks a writer that
    writes nothing, so that only rank 0 creates event files while every rank runs the same handlers."""
    import torch.distributed as dist
    from torch.utils.tensorboard import SummaryWriter

    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return _SilentWriter()
    return SummaryWriter(log_dir=log_dir)
