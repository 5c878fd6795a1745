"""Pictures of compiled workflows: Graphviz DOT text, and SVG/PNG drawn with matplotlib.

The picture shows the unrolled DAG: one box per node, loop rounds as `Agent#k`, loop edges
dashed, guards as edge labels. Layers follow topological generations, so it reads top-down.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

KIND_COLOURS = {
    "RandomPool": "#cfe8ff", "UserIntent": "#d7f5d0", "TaskValidation": "#fff2c2",
    "DialogSynthesis": "#ffd9c9", "TrajectoryValidation": "#e8d9ff", "Modify": "#ffe0f0",
    "VerificationFunction": "#d0f0f0",
}


def to_dot(plan) -> str:
    g = plan.graph
    lines = [f'digraph "{plan.data["workflow"]}" {{', "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for n, d in g.nodes(data=True):
        label = f"{n}\\n{d['kind']} · {d['llm_calls']} LLM calls"
        colour = KIND_COLOURS.get(d["kind"], "#eeeeee")
        lines.append(f'  "{n}" [label="{label}", fillcolor="{colour}"];')
    for u, v, d in g.edges(data=True):
        attrs = []
        if d.get("guard"):
            attrs.append('label="{}"'.format(d["guard"].replace('"', '\\"')))
        if d.get("loop"):
            attrs.append("style=dashed")
        lines.append(f'  "{u}" -> "{v}"' + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layout(g: nx.DiGraph) -> dict:
    """Top-down layers; a node fed by several rounds of a loop (the loop's exit) goes in a
    side column level with the rounds that feed it, so the fan-in stays readable."""
    pos: dict = {}
    for depth, layer in enumerate(nx.topological_generations(g)):
        main = sorted(n for n in layer if not _loop_exit(g, n))
        for i, n in enumerate(main):
            pos[n] = (i - (len(main) - 1) / 2, -depth)
    width = max((x for x, _ in pos.values()), default=0)
    for n in nx.topological_sort(g):
        if n in pos:
            continue
        ys = [pos[p][1] for p in g.predecessors(n) if p in pos]
        pos[n] = (width + 1.9, sum(ys) / len(ys) if ys else 0)
    return pos


def _loop_exit(g: nx.DiGraph, n: str) -> bool:
    return g.nodes[n].get("round", 0) == 0 and sum(
        1 for p in g.predecessors(n) if g.nodes[p].get("round", 0) > 0) > 0


def draw(plan, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    g = plan.graph
    pos = _layout(g)
    depth = max((-y for _, y in pos.values()), default=0) + 1
    width = max((sum(1 for p in pos.values() if p[1] == -d) for d in range(depth)), default=1)
    fig, ax = plt.subplots(figsize=(max(6, 3.2 * width), max(4, 1.25 * depth)))
    for u, v, d in g.edges(data=True):
        (x1, y1), (x2, y2) = pos[u], pos[v]
        side = abs(x2 - x1) > 0.5  # into the side column: leave from the box's side
        start = (x1 + 0.62, y1) if side else (x1, y1 - 0.22)
        end = (x2 - 0.62, y2) if side else (x2, y2 + 0.22)
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="-|>", color="#555555", lw=1.1,
                                    linestyle="--" if d.get("loop") else "-",
                                    connectionstyle="arc3"))
        if d.get("guard"):
            lx, ly = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.06) if side else (x1 + 0.05, (y1 + y2) / 2)
            ax.text(lx, ly, d["guard"], fontsize=7, color="#7a3b00", ha="left", va="center",
                    style="italic")
    for n, (x, y) in pos.items():
        d = g.nodes[n]
        ax.add_patch(FancyBboxPatch((x - 0.62, y - 0.2), 1.24, 0.4, boxstyle="round,pad=0.02",
                                    fc=KIND_COLOURS.get(d["kind"], "#eeeeee"), ec="#333333"))
        ax.text(x, y + 0.05, n, ha="center", va="center", fontsize=9, weight="bold")
        ax.text(x, y - 0.11, f"{d['kind']} · {d['llm_calls']} calls", ha="center", va="center", fontsize=7)
    xs = [p[0] for p in pos.values()] or [0]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(-depth + 0.4, 0.6)
    ax.axis("off")
    c = plan.cost
    ax.set_title(f"{plan.data['workflow']} — {c.nodes} nodes, worst case {c.worst_case_llm_calls} "
                 f"LLM calls per instance", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_graph(plan, out: Path) -> None:
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".dot", ".gv"):
        out.write_text(to_dot(plan))
    elif suffix in (".svg", ".png", ".pdf"):
        draw(plan, out)
    else:
        raise ValueError(f"unknown picture format {suffix!r}: use .dot, .svg or .png")
