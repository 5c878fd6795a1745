"""Does GRPO after SFT raise pass^1 on tasks it never saw? A held-out learning bench on a CPU.

    python bench/learning.py [--seeds 0 1 2] [--jobs 2] [--out DIR] [--user scripted|sft|untuned]

Per seed s, on the mini bank (tests/fixtures/mini):

1. Offline runs from separate worlds: training tasks from `--train-worlds` banks built
   with seeds s, s + 10000, s + 20000, … (`--n-train` split over them: many worlds put many
   different ids and amounts in training, so that copying them from the conversation pays
   more than memorising one world's accounts), held-out tasks from the bank built with
   seed s + 1000 — other account ids, owners, statuses and balances (ids are drawn from
   A000–A999, so with many training worlds some held-out ids also occur in training: the
   overlap line says what share of held-out gold values no training task uses). The overlap is computed and printed (trainer/overlap.py): exact
   duplicates (same initial state, request and verifier), near duplicates (same intent and
   objective modulo ids and numbers) and gold-call values no training task uses. The bench
   refuses to report when any exact duplicate exists.
2. A tiny Llama whose tokenizer is trained on the first training world only; a copy
   curriculum of SFT views (trainer/data.py first_call_view): first calls without the
   system prompt (`--drill-epochs`), then on to the first reply after the tool result
   (`--reply-drill-epochs`), then those replies behind the system prompt and tools
   (`--context-drill-epochs`), then full SFT at a lower rate on `--sft-worlds` worlds,
   rehearsing the in-context replies; pass^1 on the held-out tasks; GRPO on the training
   tasks (binary verifier reward, a look-up passes only when the agent tells the balance
   and status); pass^1 on the held-out tasks again. Evaluation always uses the scripted user (the fixed judge);
   GRPO's rollouts use the scripted user or, for the paper's user-model ablation, a user
   model: SFT'd on the run's user view (`--user sft`) or untuned (`--user untuned`).
3. Results paired by task (the same held-out task before and after GRPO): per seed, per
   intent and pooled, each a mean difference with a bootstrap 95% confidence interval
   (tasks resampled within each seed).

What was tried (2026-12; pass^1 of whole held-out episodes after SFT, and the teacher-forced
exact rate of held-out first tool calls behind the system prompt, "first calls", or of
held-out first replies that repeat the balance a tool returned, "replies"):

    configuration                                                   pass^1   first calls
    1 world, SFT 8 epochs lr 3e-3, 96 hidden × 3 layers              0.000
    … SFT 24 epochs (loss 0.25)                                      0.000
    … 192 hidden × 4 layers                                          0.000
    16 worlds, short first-call drill, full SFT 6 epochs lr 3e-3     0.000    8%
    … + in-context drill (after the drills: 48–65%)                  0.000    8%
    … full SFT lr 1e-3 / 3e-4, 2 epochs                              0.000    45% / 30%
    … full SFT rehearsing the first calls                            0.000    62%
                                                                              replies
    … + a first-reply drill on the same 320 tasks (seed 0)           0.000    0/30 (20/20 on training: memorised)
    first-call drill, then first-reply drill on 1,600 tasks of 80
      worlds (seed 0): 1,200 / 2,400 / 2,800 reply steps                       6/30 / 25/30 / –
    … + in-context reply drill 2 epochs, full SFT rehearsing it      0.292    27/30 in context (look-ups 0.82)
    the defaults (1,600 tasks of 16 worlds, drills of 1,000 /
      2,000 / 200 steps; seeds 0 / 1 / 2)                             0.000 / 0.224 / 0.000

Replies are memorised, not copied, until the training tasks hold far more accounts than a
tiny model can memorise. With the defaults, seed 1 crossed into copying and seeds 0 and 2
had not when the reply drill ended (drill loss 0.35 against 0.05, still falling), so their
GRPO saw zero rewards; seed 1's GRPO made 10 updates (training reward 0.12–0.41) and moved
held-out pass^1 from 0.224 to 0.229, paired +0.005 [−0.026, +0.036]: no gain shown. Seed 0's
held-out world was used to choose the curriculum; seeds 1 and 2's were not looked at.

Seeds run as parallel processes (`--jobs`), one torch thread each (tiny tensors gain
nothing from threads). Wall times depend on the machine's load: the summary prints the
load average with them. `--json FILE` keeps every row (per task counts, curves).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MINI = str(ROOT / "tests" / "fixtures" / "mini")
HELD_SEED = 1000  # held-out world: seed + HELD_SEED
TRAIN_SEED_STEP = 10_000  # training world j: seed + j × TRAIN_SEED_STEP (never a held-out seed)


def make_run(seed: int, n: int, size: float, out: Path) -> Path:
    made = subprocess.run([sys.executable, "-m", "runtime.cli.main", "run", str(ROOT / "workflows" / "eigendata.yaml"),
                           "--domain", MINI, "--n", str(n), "--size", str(size), "--seed", str(seed),
                           "--out", str(out), "-q"], cwd=ROOT, capture_output=True, text=True)
    if made.returncode != 0:
        raise SystemExit(f"eigen run failed: {(made.stderr or made.stdout).strip()[-500:]}")
    return out


def user_model(args: argparse.Namespace, run: Path, tiny: Path, base: Path, seed: int) -> str:
    """The user simulator of GRPO's rollouts: 'scripted', or a user model's folder."""
    if args.user == "scripted":
        return "scripted"
    if args.user == "untuned":
        return str(tiny)  # the same tiny model before any training: it has not learned to be a user
    from trainer.sft import SFTConfig, train_sft

    return str(train_sft(SFTConfig(model=str(tiny), data=str(run), out=str(base / "sft_user"), role="user",
                                   batch_size=4, epochs=args.sft_epochs, lr=args.sft_lr, schedule="cosine",
                                   warmup_steps=10, seed=seed, max_length=2048)).final)


def one_seed(args: argparse.Namespace, seed: int) -> dict:
    """Runs, overlap, tiny model, SFT, eval, GRPO, eval for one seed; the row printed for it."""
    import torch

    from trainer.evaluate import evaluate
    from trainer.grpo import GRPOConfig, train_grpo
    from trainer.overlap import intent_of, overlap, records_of
    from trainer.rollout import load_tasks
    from trainer.sft import SFTConfig, train_sft
    from trainer.tiny import build_tiny_from_run

    torch.set_num_threads(1)
    base = Path(args.out) / f"seed{seed}"
    shutil.rmtree(base, ignore_errors=True)  # a fresh run: the stages would resume (or refuse) a stale one
    t0 = time.perf_counter()
    # W training worlds (seeds s, s + 10000, …): ids and amounts vary across worlds, so that
    # copying them from the conversation pays more than memorising one world's accounts
    per_world = -(-args.n_train // args.train_worlds)
    train_runs = [make_run(seed + TRAIN_SEED_STEP * j, per_world, args.size, base / f"train{j}")
                  for j in range(args.train_worlds)]
    train_run = train_runs[0]
    held_run = make_run(seed + HELD_SEED, args.n_held, args.held_size, base / "held")
    train, _ = load_tasks(train_runs, MINI)
    held, _ = load_tasks([held_run], MINI)
    ov = overlap(records_of(train), records_of(held))
    row: dict = {"seed": seed, "train": len(train), "held_out": len(held), "overlap": ov.to_json(),
                 "overlap_text": ov.summary()}
    if ov.exact:
        return row | {"refused": f"{len(ov.exact)} held-out task(s) are exact copies of training tasks"}
    tiny, _ = build_tiny_from_run(train_run, base / "tiny", vocab_size=args.vocab, seed=seed, hidden=args.hidden,
                                  layers=args.layers, split_digits=not args.bpe_digits)
    start, data = tiny, [str(r) for r in train_runs]
    # the curriculum (SFTConfig.view): short first-call views, dense in copies of what the user
    # said; short views on to the first reply, the copy of what a tool returned; those replies
    # behind the system prompt and tool schemas (the copies at their real distance); then full
    # SFT at a lower rate on the first --sft-worlds worlds, rehearsing the in-context replies
    for stage, view, epochs in (("drill", "first_call", args.drill_epochs),
                                ("reply_drill", "first_reply", args.reply_drill_epochs),
                                ("context_drill", "first_reply_in_context", args.context_drill_epochs)):
        if epochs:
            start = train_sft(SFTConfig(model=str(start), data=data, out=str(base / stage), view=view,
                                        batch_size=args.drill_batch, epochs=epochs, lr=args.sft_lr, schedule="cosine",
                                        warmup_steps=10, seed=seed, max_length=2048)).final
    sft = train_sft(SFTConfig(model=str(start), data=data[:args.sft_worlds], out=str(base / "sft"), batch_size=4,
                              view="full_and_first_replies" if args.rehearse else "full",
                              epochs=args.sft_epochs, lr=args.full_sft_lr or args.sft_lr, schedule="cosine", warmup_steps=10,
                              seed=seed, max_length=2048))
    ev = dict(trials=args.trials, max_turns=8, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
              domain=MINI, seed=seed)
    probe = train[:args.train_eval]  # training tasks, for the in-distribution change beside the held-out one
    before = evaluate(sft.final, held + probe, **ev)
    t1 = time.perf_counter()
    user = user_model(args, train_run, tiny, base, seed)
    grpo = train_grpo(GRPOConfig(model=str(sft.final), data=[str(r) for r in train_runs], domain=MINI, out=str(base / "grpo"),
                                 user=user, tasks_per_step=args.tasks_per_step, group_size=args.group_size,
                                 max_refills=3, lr=args.lr, grad_accum=2, max_turns=8,
                                 max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                 mask_truncated=not args.train_truncated, steps=args.grpo_steps, seed=seed,
                                 threads=1))
    t2 = time.perf_counter()
    after = evaluate(grpo.final, held + probe, **ev)
    metrics = [json.loads(x) for x in (base / "grpo" / "metrics.jsonl").read_text().splitlines()]

    def pairs(tasks: list) -> list[dict]:
        return [{"id": t.id, "intent": intent_of(t.record), "n": args.trials, "before": before.per_task[t.id]["c"],
                 "after": after.per_task[t.id]["c"]} for t in tasks]

    return row | {"tasks": pairs(held), "train_probe": pairs(probe), "updates": grpo.updates,
                  "train_reward": [round(m["reward_mean"], 2) for m in metrics],
                  "cut_turns": round(sum(m.get("cut_turns_frac", 0.0) for m in metrics) / max(1, len(metrics)), 3),
                  "sft_s": round(t1 - t0, 1), "grpo_s": round(t2 - t1, 1),
                  "total_s": round(time.perf_counter() - t0, 1)}


# ---------------------------------------------------------------- paired statistics


def paired(tasks_by_seed: dict[int, list[dict]], boot: int = 10_000, seed: int = 0) -> dict:
    """Mean of (after − before) pass^1 over tasks, with a 95% percentile bootstrap CI:
    tasks resampled with replacement within each seed (the seeds' sizes kept)."""
    groups = [[(t["after"] - t["before"]) / t["n"] for t in ts] for ts in tasks_by_seed.values() if ts]
    flat = [d for g in groups for d in g]
    if not flat:
        return {"n": 0}
    before = sum(t["before"] / t["n"] for ts in tasks_by_seed.values() for t in ts) / len(flat)
    rng = random.Random(seed)
    means = []
    for _ in range(boot):
        total = sum(sum(rng.choice(g) for _ in g) for g in groups)
        means.append(total / len(flat))
    means.sort()
    return {"n": len(flat), "before": before, "after": before + sum(flat) / len(flat), "diff": sum(flat) / len(flat),
            "lo": means[int(0.025 * boot)], "hi": means[int(0.975 * boot) - 1]}


def _line(name: str, s: dict) -> str:
    if not s.get("n"):
        return f"{name:<22} (no tasks)"
    return (f"{name:<22} {s['n']:>5} {s['before']:>7.3f} {s['after']:>7.3f} {s['diff']:>+8.3f}  "
            f"[{s['lo']:+.3f}, {s['hi']:+.3f}]")


def report(rows: list[dict], key: str = "tasks") -> dict:
    """Print the paired tables (per seed, per intent, pooled); return them."""
    print(f"{'held-out pass^1' if key == 'tasks' else 'training-task pass^1':<22} {'tasks':>5} {'SFT':>7} "
          f"{'GRPO':>7} {'diff':>8}  95% CI (bootstrap)")
    out: dict = {"seeds": {}, "intents": {}}
    for r in rows:
        out["seeds"][r["seed"]] = s = paired({r["seed"]: r[key]})
        print(_line(f"seed {r['seed']}", s))
    intents = sorted({t["intent"] for r in rows for t in r[key]})
    for intent in intents:
        out["intents"][intent] = s = paired({r["seed"]: [t for t in r[key] if t["intent"] == intent] for r in rows})
        print(_line(f"  {intent}", s))
    out["pooled"] = s = paired({r["seed"]: r[key] for r in rows})
    print(_line("pooled", s))
    return out


# ---------------------------------------------------------------- main


def options() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="seeds run at once, one process and torch thread each")
    ap.add_argument("--n-train", type=int, default=1600, help="accepted training instances per seed")
    ap.add_argument("--n-held", type=int, default=48, help="accepted held-out instances per seed")
    ap.add_argument("--train-worlds", type=int, default=16, help="training worlds (seeds), n-train split over them")
    ap.add_argument("--size", type=float, default=5.0, help="training world size (1.0: 20 accounts)")
    ap.add_argument("--held-size", type=float, default=0.5, help="held-out world size")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--bpe-digits", action="store_true", help="let BPE merge digits (the old tokenizer)")
    ap.add_argument("--drill-epochs", type=int, default=10,
                    help="curriculum: epochs of first-call views (SFTConfig.view) before the full SFT; 0: none")
    ap.add_argument("--reply-drill-epochs", type=int, default=20,
                    help="curriculum: then epochs of views on to the first reply after a tool result; 0: none")
    ap.add_argument("--context-drill-epochs", type=int, default=2,
                    help="curriculum: then those views behind the system prompt and tools; 0: none")
    ap.add_argument("--drill-batch", type=int, default=16)
    ap.add_argument("--no-rehearse", dest="rehearse", action="store_false",
                    help="full SFT on conversations only (default: also their in-context first replies, so that "
                         "the drills' copying survives it)")
    ap.add_argument("--sft-worlds", type=int, default=4, help="full SFT on the first this many training worlds")
    ap.add_argument("--sft-epochs", type=int, default=2)
    ap.add_argument("--sft-lr", type=float, default=3e-3)
    ap.add_argument("--full-sft-lr", type=float, default=1e-3,
                    help="the full-conversation SFT's learning rate (3e-3 undid the drill's copying)")
    ap.add_argument("--grpo-steps", type=int, default=12)
    ap.add_argument("--tasks-per-step", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-4, help="GRPO learning rate")
    ap.add_argument("--train-truncated", action="store_true", help="train turns cut by max_new_tokens")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=1.0, help="rollout and evaluation sampling")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--train-eval", type=int, default=0, help="also evaluate this many training tasks")
    ap.add_argument("--user", choices=["scripted", "sft", "untuned"], default="scripted",
                    help="GRPO's user simulator (evaluation always uses the scripted user)")
    ap.add_argument("--out", default="/tmp/eigen_bench_learning")
    ap.add_argument("--json", default=None, help="write every row and table here")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # run one seed, print its row
    return ap


def main() -> None:
    args = options().parse_args()
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
        row = json.loads(found[-1])
        rows.append(row)
        print(f"seed {seed}: {row['overlap_text']}", flush=True)
        if "refused" not in row:
            print(f"seed {seed}: {row['updates']} GRPO updates, training reward {row['train_reward']}, "
                  f"cut turns {row['cut_turns']:.0%}, {row['total_s']:.0f} s "
                  f"(SFT+eval {row['sft_s']:.0f} s, GRPO {row['grpo_s']:.0f} s)", flush=True)
    if not rows:
        sys.exit(1)
    rows.sort(key=lambda r: r["seed"])
    refused = [r for r in rows if "refused" in r]
    if refused:
        for r in refused:
            print(f"seed {r['seed']}: REFUSED: {r['refused']} ({', '.join(r['overlap']['exact_ids'][:5])})")
        sys.exit(1)
    tables = {"held_out": report(rows)}
    if any(r["train_probe"] for r in rows):
        tables["train"] = report(rows, "train_probe")
    load = os.getloadavg()
    print(f"{len(rows)} seeds, {time.perf_counter() - start:.0f} s wall with --jobs {args.jobs} "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; others' work inflates it)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows, "tables": tables}, indent=1) + "\n")


if __name__ == "__main__":
    main()
