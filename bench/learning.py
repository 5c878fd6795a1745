"""Does GRPO raise held-out pass^1 after SFT? The smallest setup we have on a CPU.

    python bench/learning.py [--n 80] [--seeds 0 1] [--sft-epochs 6] [--grpo-steps 12]

Per seed: an offline run of the mini bank (tests/fixtures/mini, size 1.0: balance look-ups
and transfers, short dialogs), a tiny model whose tokenizer is trained on it, SFT on the
training instances, then GRPO on the same training tasks (scripted user, binary verifier
reward), and pass^1 (and pass^k) on the held-out instances (by id hash, the same split for
both stages) after each stage. Prints what it measures; nothing is tuned per seed.
A benchmark, not a test: minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MINI = str(ROOT / "tests" / "fixtures" / "mini")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--held-out", type=float, default=0.25)
    ap.add_argument("--sft-epochs", type=int, default=6)
    ap.add_argument("--grpo-steps", type=int, default=12)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--out", default="/tmp/eigen_bench_learning")
    args = ap.parse_args()

    import torch

    from trainer.evaluate import evaluate
    from trainer.grpo import GRPOConfig, train_grpo
    from trainer.rollout import load_tasks
    from trainer.data import held_out
    from trainer.sft import SFTConfig, train_sft
    from trainer.tiny import build_tiny_from_run

    torch.set_num_threads(2)
    rows = []
    for seed in args.seeds:
        base = Path(args.out) / f"seed{seed}"
        run = base / "run"
        subprocess.run([sys.executable, "-m", "runtime.cli.main", "run", str(ROOT / "workflows" / "eigendata.yaml"),
                        "--domain", MINI, "--n", str(args.n), "--size", "1.0", "--seed", str(seed),
                        "--out", str(run), "-q"], cwd=ROOT, check=True, capture_output=True)
        t0 = time.perf_counter()
        tiny, _ = build_tiny_from_run(run, base / "tiny", vocab_size=1024, seed=seed, hidden=96, layers=3)
        sft = train_sft(SFTConfig(model=str(tiny), data=str(run), out=str(base / "sft"), batch_size=4,
                                  epochs=args.sft_epochs, lr=3e-3, held_out=args.held_out, seed=seed,
                                  max_length=2048))
        tasks, _ = load_tasks([run], MINI)
        held = [t for t in tasks if held_out(t.id, args.held_out)]
        ev = dict(trials=args.trials, max_turns=8, max_new_tokens=96, domain=MINI, seed=seed)
        before = evaluate(sft.final, held, **ev)
        t1 = time.perf_counter()
        grpo = train_grpo(GRPOConfig(model=str(sft.final), data=[str(run)], domain=MINI, out=str(base / "grpo"),
                                     held_out=args.held_out, tasks_per_step=4, group_size=4, max_refills=2,
                                     lr=1e-4, grad_accum=2, max_turns=8, max_new_tokens=96, steps=args.grpo_steps,
                                     seed=seed, threads=2))
        after = evaluate(grpo.final, held, **ev)
        t2 = time.perf_counter()
        metrics = [json.loads(x) for x in (base / "grpo" / "metrics.jsonl").read_text().splitlines()]
        row = {"seed": seed, "train": len(tasks) - len(held), "held_out": len(held),
               "sft_pass1": before.scores()["pass^k"][1], "grpo_pass1": after.scores()["pass^k"][1],
               "sft_passk": before.scores()["pass^k"][args.trials], "grpo_passk": after.scores()["pass^k"][args.trials],
               "updates": grpo.updates, "train_reward_first": metrics[0]["reward_mean"],
               "train_reward_last": metrics[-1]["reward_mean"], "sft_s": round(t1 - t0, 1), "grpo_s": round(t2 - t1, 1)}
        row["diff_pass1"] = row["grpo_pass1"] - row["sft_pass1"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("sft_pass1", "grpo_pass1", "diff_pass1")}
    print(f"held-out pass^1 over seeds {args.seeds}: after SFT {mean['sft_pass1']:.3f}, "
          f"after GRPO {mean['grpo_pass1']:.3f}, difference {mean['diff_pass1']:+.3f}")


if __name__ == "__main__":
    main()
