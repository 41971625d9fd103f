"""One progress bar over the tiles of a whole job, with an early warning when it will be long.

A bar per image sits at ``0/1`` until a large image is done; counting tiles instead moves from the
first tile (tiles/s, elapsed and ETA come from tqdm). The first tile also predicts the whole job:
above :data:`WARN_SECONDS` one line says how long and what is faster.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

# a job predicted longer than this gets one line with the estimate and the faster options
WARN_SECONDS = 60.0
FASTER = ("faster: a smaller model, a GPU (--device cuda; --precision auto then runs bf16 where the net allows), "
          "or fp16 on an older GPU")


class TileProgress:
    """A tqdm bar counting tiles; pass the instance as ``on_tile`` to ``upscale_array``.

    Args:
        total: tiles in the whole job (may grow with :meth:`add`).
        desc: the bar's label.
        quiet: no bar and no estimate line.
        faster: what the estimate line suggests (the options of the calling CLI).
        leave: keep the finished bar on screen.
        unit: what is counted (``frame`` for a video: the bar then shows frames/s).
    """

    def __init__(self, total: int, desc: str, quiet: bool = False, faster: str = FASTER, leave: bool = True,
                 unit: str = "tile") -> None:  # fmt: skip
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr, leave=leave)
        self.quiet = quiet
        self.faster = faster
        self.start = time.perf_counter()
        self.warned = False

    def add(self, tiles: int) -> None:
        """Count ``tiles`` more in the total (work found once an image is read, e.g. its alpha)."""
        self.bar.total += tiles
        self.bar.refresh()

    def __call__(self, n: int = 1) -> None:
        """``n`` tiles (frames) done; after the first, warn once if the job looks longer than :data:`WARN_SECONDS`."""
        self.bar.update(n)
        if not self.warned:
            self.warned = True
            per_tile = (time.perf_counter() - self.start) / n  # includes reading the first image: an upper bound
            estimate = per_tile * max(self.bar.total, 1)
            if estimate > WARN_SECONDS and not self.quiet:
                self.write(
                    f"note: about {_duration(estimate)} for {self.bar.total} {self.bar.unit}s "
                    f"({per_tile:.1f} s for the first); {self.faster}"
                )

    def write(self, line: str) -> None:
        """Print a line above the bar (stderr), unless quiet."""
        if not self.quiet:
            tqdm.write(line, file=sys.stderr)

    def write_err(self, line: str) -> None:
        """Print an error line above the bar (stderr), quiet or not."""
        tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _duration(secs: float) -> str:
    if secs < 120:
        return f"{secs:.0f} s"
    if secs < 2 * 3600:
        return f"{secs / 60:.0f} min"
    return f"{secs / 3600:.1f} h"
