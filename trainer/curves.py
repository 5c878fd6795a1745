"""Curves of a GRPO run's `metrics.jsonl` as one PNG (`curves.png`, written at each checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def plot_metrics(metrics: Path, png: Path) -> Path | None:
    """Reward, filtered fraction, clip fraction and the time split per step, as PNG curves;
    for an asynchronous run also the staleness histogram, trajectories per second and the
    trainer's and the actors' idle fractions."""
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
    asynchronous = any("staleness" in r for r in rows)  # trainer/async_grpo.py's rows
    fig, axes = plt.subplots(3 if asynchronous else 2, 2, figsize=(9, 9 if asynchronous else 6))
    for ax, key in zip(axes.flat[:3], ("reward_mean", "filtered_frac", "clip_frac")):
        ax.plot(steps, [r.get(key, 0.0) for r in rows], marker=".")
        ax.set_title(key)
        ax.set_xlabel("step")
    ax = axes.flat[3]
    ax.plot(steps, [r.get("rollout_s", 0.0) for r in rows], label="rollout")
    ax.plot(steps, [r.get("train_s", 0.0) for r in rows], label="train")
    ax.set_title("seconds per step")
    ax.legend()
    if asynchronous:
        _plot_async(rows, steps, axes[2])
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)
    return png


def _plot_async(rows: list[dict], steps: list[int], axes: Any) -> None:
    total: dict[int, int] = {}
    for r in rows:
        for k, n in (r.get("staleness") or {}).items():
            total[int(k)] = total.get(int(k), 0) + int(n)
    ax = axes[0]
    ax.bar([str(k) for k in sorted(total)], [total[k] for k in sorted(total)])
    ax.set_title("trained trajectories by staleness (versions)")
    ax = axes[1]
    ax.plot(steps, [r.get("trainer_idle_frac", 0.0) for r in rows], label="trainer idle")
    ax.plot(steps, [r.get("rollout_idle_frac", 0.0) for r in rows], label="rollout idle")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("step")
    twin = ax.twinx()
    twin.plot(steps, [r.get("trajectories_per_s", 0.0) for r in rows], color="gray", linestyle="--",
              label="trajectories/s")
    twin.set_ylabel("trajectories/s")
    ax.set_title("idle fractions, trajectories per second")
    ax.legend(loc="upper left", fontsize="small")
