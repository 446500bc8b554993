"""Saving figures without pyplot (no global state, any backend)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 130


def save_figure(fig: Figure, path) -> Figure:
    """Write ``fig`` to ``path`` (parents created) at the house resolution."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return fig
