"""Curves of a GRPO run's `metrics.jsonl` as one PNG (`curves.png`, written at each checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path


def plot_metrics(metrics: Path, png: Path) -> Path | None:
    """Reward, filtered fraction, clip fraction and the time split per step, as PNG curves."""
    rows = []
    for line in metrics.read_text(encoding="utf-8").splitlines() if metrics.is_file() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6))
    for ax, key in zip(axes.flat[:3], ("reward_mean", "filtered_frac", "clip_frac")):
        ax.plot(steps, [r.get(key, 0.0) for r in rows], marker=".")
        ax.set_title(key)
        ax.set_xlabel("step")
    ax = axes.flat[3]
    ax.plot(steps, [r.get("rollout_s", 0.0) for r in rows], label="rollout")
    ax.plot(steps, [r.get("train_s", 0.0) for r in rows], label="train")
    ax.set_title("seconds per step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)
    return png
