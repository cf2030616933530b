"""What every figure shares: matplotlib without a display, the train/validation line styles, whole-epoch
ticks, and the one way a figure becomes a file. Lines differ by style as well as colour, so they read in
grayscale and in print."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed, none is assumed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dropcli.files import write_atomically  # noqa: E402

TRAIN_STYLE: dict[str, Any] = {"color": "#1f4e79", "linestyle": "-", "linewidth": 1.8}
VAL_STYLE: dict[str, Any] = {"color": "#c55a11", "linestyle": "--", "linewidth": 1.8}


def whole_epochs(axis) -> None:
    """Epoch axes tick at whole epochs only (a 3-epoch run would otherwise show 1.5, 2.5 ...)."""
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def write_figure(figure, path: Path, dpi: int, **options) -> None:
    """The figure rendered in memory (in the format `path`'s suffix names: png, svg, pdf), then written
    atomically: a link planted at `path` is replaced, never written through; a full disk leaves the old file
    or none, never a 0-byte figure, and the error names the file."""
    rendered = io.BytesIO()
    figure.savefig(rendered, format=path.suffix.lstrip("."), dpi=dpi, **options)
    write_atomically(path, rendered.getvalue())


def close(figure) -> None:
    plt.close(figure)
