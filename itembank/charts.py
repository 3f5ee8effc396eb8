"""Pictures for researchers: item characteristic curves and information curves (PNG)."""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from scoring import models
from scoring.params import ItemParams

THETA = np.linspace(-4, 4, 161)


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def item_curves_png(params: ItemParams, title: str) -> bytes:
    """Category response curves of one item, with its information on a second axis."""
    prob = models.probabilities(params, THETA)[:, 0, :]
    info = models.item_information(params, THETA)[:, 0]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    k = int(params.n_categories[0])
    if k == 2:
        ax.plot(THETA, prob[:, 1], label="P(correct)", color="#0b5cad", lw=2)
    else:
        for cat in range(k):
            ax.plot(THETA, prob[:, cat], label=f"category {cat}", lw=1.8)
    ax.set_xlabel("θ")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(THETA, info, color="#b36b00", ls="--", label="information")
    ax2.set_ylabel("information")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="center left", fontsize=8)
    ax.set_title(title)
    return _png(fig)


def information_png(curves: Mapping[str, np.ndarray], title: str,
                    thin_below: float | None = None) -> bytes:
    """Test information curves (one per label) across theta, with the SE scale on the right."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, info in curves.items():
        ax.plot(THETA, info, label=label, lw=2 if label == "total" else 1.3)
    if thin_below is not None:
        ax.axhline(thin_below, color="#b00020", ls=":", lw=1)
    ax.set_xlabel("θ")
    ax.set_ylabel("information")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(title)
    return _png(fig)


def histogram_png(values: Sequence[float], title: str, xlabel: str) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(values, bins=20, color="#0b5cad")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("items")
    ax.set_title(title)
    return _png(fig)
