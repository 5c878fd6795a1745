"""Does GRPO raise held-out pass^1 after SFT? The smallest setup we found on a CPU.

    python bench/learning.py [--seeds 0 1] [--jobs 2] [--sft-epochs 16] [--grpo-steps 12]

Per seed: an offline run of the mini bank (tests/fixtures/mini) at size 0.25 (a world of
five accounts; 160 accepted instances: balance look-ups and transfers), a tiny model
whose tokenizer is trained on it, SFT on the training instances, then GRPO on the same
training tasks (scripted user, binary verifier reward, rollouts sampled at temperature
1.0), and pass^1 (and pass^k) on the held-out instances (by id hash, the same split for
both stages) after each stage, at the same temperature. Prints what it measures, per
seed and per intent; nothing is tuned per seed.

What the numbers mean (measured when this was written): the tiny model never learns to
copy an amount into a transfer, so transfers fail before and after GRPO. What SFT leaves
wrong that GRPO can fix is behaviour: the SFT'd model, trained mostly on transfers, often
proposes a transfer on a balance look-up, the scripted user says yes, and the verifier
fails the changed state. Groups of such tasks have mixed rewards, and GRPO learns to
answer the look-up without a write; that is where held-out pass^1 rises. Longer SFT makes
this mistake more often (less SFT makes the mistake rarer: groups are then all-pass or
all-fail, dynamic filtering drops them all and GRPO never updates).

Seeds run as parallel processes (`--jobs`), one torch thread each: tiny tensors gain
nothing from threads, and two threads on two busy cores run many times slower.
A benchmark, not a test: about 10 minutes on 2 CPU cores for the default seeds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MINI = str(ROOT / "tests" / "fixtures" / "mini")


def intent_of(task) -> str:
    scenario = task.record.get("scenario")
    return str(scenario.get("intent")) if isinstance(scenario, dict) else "?"


def per_intent(report, tasks) -> dict[str, float]:
    """pass^1 per intent of the held-out tasks (where the difference comes from)."""
    rates = defaultdict(list)
    for t in tasks:
        row = report.per_task[t.id]
        rates[intent_of(t)].append(row["c"] / row["n"])
    return {k: round(sum(v) / len(v), 3) for k, v in sorted(rates.items())}


def one_seed(args: argparse.Namespace, seed: int) -> dict:
    """Data, tiny model, SFT, eval, GRPO, eval for one seed; the row printed for it."""
    import torch

    from trainer.data import held_out
    from trainer.evaluate import evaluate
    from trainer.grpo import GRPOConfig, train_grpo
    from trainer.rollout import load_tasks
    from trainer.sft import SFTConfig, train_sft
    from trainer.tiny import build_tiny_from_run

    torch.set_num_threads(1)
    base = Path(args.out) / f"seed{seed}"
    shutil.rmtree(base, ignore_errors=True)  # a fresh run: the stages would resume (or refuse) a stale one
    run = base / "run"
    made = subprocess.run([sys.executable, "-m", "runtime.cli.main", "run", str(ROOT / "workflows" / "eigendata.yaml"),
                           "--domain", MINI, "--n", str(args.n), "--size", str(args.size), "--seed", str(seed),
                           "--out", str(run), "-q"], cwd=ROOT, capture_output=True, text=True)
    if made.returncode != 0:
        raise SystemExit(f"eigen run failed: {(made.stderr or made.stdout).strip()[-500:]}")
    t0 = time.perf_counter()
    tiny, _ = build_tiny_from_run(run, base / "tiny", vocab_size=1024, seed=seed, hidden=96, layers=3)
    sft = train_sft(SFTConfig(model=str(tiny), data=str(run), out=str(base / "sft"), batch_size=4,
                              epochs=args.sft_epochs, lr=3e-3, schedule="cosine", warmup_steps=10,
                              held_out=args.held_out, seed=seed, max_length=2048))
    tasks, _ = load_tasks([run], MINI)
    held = [t for t in tasks if held_out(t.id, args.held_out)]
    ev = dict(trials=args.trials, max_turns=8, max_new_tokens=96, temperature=args.temperature, domain=MINI,
              seed=seed)
    before = evaluate(sft.final, held, **ev)
    t1 = time.perf_counter()
    grpo = train_grpo(GRPOConfig(model=str(sft.final), data=[str(run)], domain=MINI, out=str(base / "grpo"),
                                 held_out=args.held_out, tasks_per_step=4, group_size=8, max_refills=3,
                                 lr=5e-4, grad_accum=2, max_turns=8, max_new_tokens=96,
                                 temperature=args.temperature, steps=args.grpo_steps, seed=seed, threads=1))
    t2 = time.perf_counter()
    after = evaluate(grpo.final, held, **ev)
    metrics = [json.loads(x) for x in (base / "grpo" / "metrics.jsonl").read_text().splitlines()]
    row = {"seed": seed, "train": len(tasks) - len(held), "held_out": len(held),
           "sft_pass1": before.scores()["pass^k"][1], "grpo_pass1": after.scores()["pass^k"][1],
           "sft_passk": before.scores()["pass^k"][args.trials], "grpo_passk": after.scores()["pass^k"][args.trials],
           "sft_by_intent": per_intent(before, held), "grpo_by_intent": per_intent(after, held),
           "updates": grpo.updates, "train_reward": [round(m["reward_mean"], 2) for m in metrics],
           "sft_s": round(t1 - t0, 1), "grpo_s": round(t2 - t1, 1)}
    row["diff_pass1"] = row["grpo_pass1"] - row["sft_pass1"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--size", type=float, default=0.25)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--jobs", type=int, default=2, help="seeds run at once, one process and torch thread each")
    ap.add_argument("--held-out", type=float, default=0.25)
    ap.add_argument("--sft-epochs", type=int, default=16)
    ap.add_argument("--grpo-steps", type=int, default=12)
    ap.add_argument("--temperature", type=float, default=1.0, help="rollout and evaluation sampling")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--out", default="/tmp/eigen_bench_learning")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # run one seed, print its row
    args = ap.parse_args()

    if args.worker is not None:
        print("ROW " + json.dumps(one_seed(args, args.worker)), flush=True)
        return
    start = time.perf_counter()
    passed = list(sys.argv[1:])
    rows, running, todo = [], [], list(args.seeds)
    while todo or running:
        while todo and len(running) < max(1, args.jobs):
            seed = todo.pop(0)
            cmd = [sys.executable, str(Path(__file__).resolve()), *passed, "--worker", str(seed)]
            running.append((seed, subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                   text=True)))
        seed, proc = running.pop(0)
        out, err = proc.communicate()
        found = [line[4:] for line in out.splitlines() if line.startswith("ROW ")]
        if proc.returncode != 0 or not found:
            tail = (err or out).strip().splitlines()[-5:]
            print(f"seed {seed} failed (exit {proc.returncode}): " + " | ".join(tail), flush=True)
            continue
        rows.append(json.loads(found[-1]))
        print(found[-1], flush=True)
    if not rows:
        sys.exit(1)
    rows.sort(key=lambda r: r["seed"])
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("sft_pass1", "grpo_pass1", "diff_pass1")}
    print(f"held-out pass^1 over seeds {[r['seed'] for r in rows]}: after SFT {mean['sft_pass1']:.3f}, "
          f"after GRPO {mean['grpo_pass1']:.3f}, difference {mean['diff_pass1']:+.3f} "
          f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
