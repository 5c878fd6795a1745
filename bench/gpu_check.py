"""The trainer's GPU paths in one short script, for a machine with a GPU (and vllm):

    python bench/gpu_check.py                       # vLLM rollouts, one GPU
    python bench/gpu_check.py --nproc 2             # and FSDP over 2 GPUs (torchrun)
    python bench/gpu_check.py --engine hf --device cpu   # the same plumbing on a CPU

An offline run of the mini bank, a tiny model built from it (trainer/tiny.py: a Llama
config, so vLLM can load it), a few SFT steps, then GRPO steps whose rollouts come from
the chosen engine, with the policy's weights pushed into the engine before each step.
Prints each stage's outcome and the GRPO metrics rows; exits non-zero at the first stage
that fails. A check, not a measurement: the tiny model learns nothing in a few steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINI = str(ROOT / "tests" / "fixtures" / "mini")


def eigen(*args: str) -> None:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "runtime.cli.main", *args], cwd=ROOT, text=True,
                          capture_output=True)
    lines = [x for x in (done.stdout + done.stderr).splitlines() if x.strip() and "it/s]" not in x]  # no progress bars
    tail = lines[-3:]
    print(f"[{time.perf_counter() - t0:6.1f}s] eigen {' '.join(args[:2])}: exit {done.returncode}", *tail,
          sep="\n    ", flush=True)
    if done.returncode != 0:
        raise SystemExit(done.returncode)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/eigen_gpu_check")
    ap.add_argument("--engine", choices=["vllm", "hf"], default="vllm")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--nproc", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.mkdir(parents=True)
    run = out / "run"
    eigen("run", str(ROOT / "workflows" / "eigendata.yaml"), "--domain", MINI, "--n", "24", "--size", "0.25",
          "--seed", "0", "--out", str(run), "-q")
    eigen("train", "build-tiny", str(run), "-o", str(out / "tiny"), "--vocab-size", "1024")
    parallel = "fsdp" if args.nproc > 1 else "ddp"
    sft = {"model": str(out / "tiny"), "data": str(run), "out": str(out / "sft"), "batch_size": 4, "epochs": 2,
           "lr": 3e-3, "max_length": 2048, "device": args.device, "parallel": parallel}
    (out / "sft.json").write_text(json.dumps(sft))
    eigen("train", "sft", str(out / "sft.json"), "--nproc", str(args.nproc))
    grpo = {"model": str(out / "sft" / "final"), "data": [str(run)], "domain": MINI, "out": str(out / "grpo"),
            "tasks_per_step": 4, "group_size": 4, "max_refills": 1, "max_turns": 6, "max_new_tokens": 96,
            "lr": 1e-4, "steps": args.steps, "engine": args.engine, "device": args.device, "parallel": parallel,
            "vllm_memory": 0.2, "log_rollouts": True}
    (out / "grpo.json").write_text(json.dumps(grpo))
    eigen("train", "grpo", str(out / "grpo.json"), "--nproc", str(args.nproc))
    for line in (out / "grpo" / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        print({k: row[k] for k in ("step", "reward_mean", "groups_sampled", "groups_kept", "trajectories",
                                   "tokens", "updated", "rollout_s", "train_s")})
    rollouts = (out / "grpo" / "rollouts.jsonl").read_text().splitlines()
    turns = [json.loads(x)["turns"] for x in rollouts]
    print(f"{len(rollouts)} rollouts from engine {args.engine}, mean turns {sum(turns) / len(turns):.2f}")


if __name__ == "__main__":
    main()
