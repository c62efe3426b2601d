"""Resource limits of a predict run: the memory a chip and batch need, checked before allocating.

A chip of 30000 pixels, a batch of 100000 chips or a bundle that asks for
``chip: 1e29`` would otherwise end in an allocation traceback minutes into a
run (or take the machine down). :func:`check_memory` estimates what one block
task holds at its peak and compares it, times the tasks that run at once, with
the memory this machine has available; a run that cannot fit is refused with a
sentence before anything is read or written.

The estimate counts a block's raw pixels, the normalized batch, the model's
scores and the model's own activations (``MODEL_BYTES_PER_CHANNEL`` per chip
pixel and channel of its widest layer; on a GPU those are the GPU's, not
counted). It is an order of magnitude, not a promise: it refuses what cannot
work, it does not guarantee what it lets through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from geoseg.errors import InputError
from geoseg.grid.chips import ChipGrid, axis_owner

MAX_CHIP = 8192
"""Largest chip edge ``--chip`` accepts: one 8192² chip of 4 bands is 1 GiB of float32 input."""

MODEL_BYTES_PER_CHANNEL = 2
"""Peak bytes of a forward pass per chip pixel and channel of the model's widest convolution.

Measured on CPU: the shipped U-Net (ResNet-18, widest layer 128 channels) peaks
at about 0.9 byte per pixel and channel (490 MB for one 1024² chip, as for
four 512² chips); twice that leaves room for other architectures. Counting
every channel at full resolution (wide layers work at 1/32 of it) would refuse
runs that fit by an order of magnitude.
"""

DEFAULT_WIDTH = 64
"""Channels assumed for a model whose layers cannot be seen (ONNX)."""

GIB = 2**30


def check_chip(chip: object) -> None:
    """``--chip``: ``None`` (the bundle's), or a whole number of pixels up to ``MAX_CHIP``.

    Raises
    ------
    InputError
        ``0`` (which used to mean "the bundle's" silently), a non-integer, or
        a chip outside ``1..MAX_CHIP``.
    """
    if chip is None:
        return
    if chip == 0:
        raise InputError("--chip 0 is not a chip size; omit --chip to use the bundle's chip")
    if not isinstance(chip, int) or isinstance(chip, bool) or not 1 <= chip <= MAX_CHIP:
        raise InputError(
            f"--chip must be a whole number of pixels from 1 to {MAX_CHIP}, got {chip!r}; "
            "omit it to use the bundle's chip"
        )


@dataclass(frozen=True, slots=True)
class MemoryNeed:
    """Bytes one block task holds at its peak, by part."""

    raw: int
    batch: int
    scores: int
    model: int

    @property
    def total(self) -> int:
        """All parts together."""
        return self.raw + self.batch + self.scores + self.model


def model_width(bundle: Any) -> int:
    """Channels of the model's widest convolution (``DEFAULT_WIDTH`` for ONNX, 1 for indices)."""
    if bundle.kind == "index":
        return 1
    widths = [int(t.shape[0]) for t in bundle.tensors.values() if getattr(t, "ndim", 0) == 4]
    return max(widths) if widths else DEFAULT_WIDTH


def _window_edge(starts: tuple[int, ...], chip: int, stride: int, block: int) -> int:
    """Longest union of one block's chips along an axis (pixels)."""
    owner = axis_owner(starts, block, stride)
    edges = []
    for b in set(owner):
        idx = [i for i, o in enumerate(owner) if o == b]
        edges.append(starts[idx[-1]] + chip - starts[idx[0]])
    return max(edges)


def block_need(
    grid: ChipGrid, *, block: int, batch: int, bands: int, itemsize: int, classes: int, width: int
) -> MemoryNeed:
    """What one block task holds: raw block, normalized batch, scores, activations.

    Sizes are Python integers, so absurd chips (``1e29``) give absurd numbers
    rather than overflowing.
    """
    rows = _window_edge(grid.row_starts, grid.chip, grid.stride, block)
    cols = _window_edge(grid.col_starts, grid.chip, grid.stride, block)
    # raw pixels, the valid mask and one float32 band while checking finiteness
    raw = rows * cols * (bands * itemsize + 1 + 4)
    pixels = batch * grid.chip * grid.chip
    # the float32 cast, the stacked batch and its padded copy
    return MemoryNeed(
        raw=raw,
        batch=2 * pixels * bands * 4,
        scores=2 * pixels * classes * 4,
        model=pixels * width * MODEL_BYTES_PER_CHANNEL,
    )


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit (containers), if there is one."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            used = int(f.read().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def _address_space_left() -> int | None:
    """Room under this process's address-space limit (``ulimit -v``), if one is set."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status", encoding="ascii") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        return max(0, limit - size)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping (``None`` if unknown).

    ``MemAvailable`` from ``/proc/meminfo`` (what the kernel can hand out
    without swapping), bounded by a container's cgroup limit and by
    ``ulimit -v``; elsewhere the free physical pages ``os.sysconf`` reports.
    """
    sources = (_meminfo_available(), _cgroup_available(), _address_space_left())
    found = [v for v in sources if v is not None]
    if found:
        return min(found)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: int) -> str:
    value = n / GIB
    if value >= 10**6:
        return f"{value:.1e} GiB"
    return f"{value:.1f} GiB" if value < 10 else f"{value:.0f} GiB"


def check_memory(
    need: MemoryNeed,
    *,
    tasks: int,
    available: int | None,
    chip: int,
    batch: int,
    where: str = "this machine",
) -> None:
    """Refuse a run whose block tasks cannot fit in ``available`` bytes.

    Raises
    ------
    InputError
        ``tasks`` block tasks of ``need`` do not fit.
    """
    if available is None:
        return
    total = need.total * tasks
    if total <= available:
        return
    at_once = f" x {tasks} block tasks at once" if tasks > 1 else ""
    hint = "--threads 1, " if tasks > 1 else ""
    raise InputError(
        f"chip {chip} with batch size {batch}{at_once} needs about {_gib(total)}; {where} "
        f"has {_gib(available)} available: use {hint}a smaller --chip or a smaller --batch-size"
    )
