"""What tests/trainer/test_async_grpo.py runs inside Ray actors and in a subprocess.

- `MixedRewardActor`: the rollout actor with the rewards the synchronous tests give their
  episodes (`mixed_rewards`): a tiny random policy fails every task, so without this no
  group carries signal and nothing would be trained. `SlowActor`: the same, slowly;
  `BrokenActor`: every unit raises.
- `python tests/trainer/async_support.py CONFIG.json`: `train_async` with that actor (the
  run the resume test kills with SIGKILL and resumes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from trainer.rollout_actors import HFRolloutActor  # noqa: E402

GROUP = 2  # the tests' group_size


def mixed_rewards(rollouts: list) -> list:
    """Rewards by position in one generation call: groups alternate 0, 1 within, except every
    third group, all 0 (filtered, so the step refills)."""
    for i, r in enumerate(rollouts):
        r.reward = 0.0 if (i // GROUP) % 3 == 2 else float(i % 2)
    return rollouts


class MixedRewardActor(HFRolloutActor):
    def episodes(self, tasks: list) -> list:
        return mixed_rewards(super().episodes(tasks))


class BrokenActor(HFRolloutActor):
    """Every unit raises (a bug, a broken environment): the run must stop and say why."""

    def episodes(self, tasks: list) -> list:
        raise ValueError("the environment is broken")


class SlowActor(MixedRewardActor):
    """A unit takes a second at least: long enough to be killed while it runs."""

    def episodes(self, tasks: list) -> list:
        time.sleep(1.0)
        return super().episodes(tasks)


def _by_value() -> None:
    """Ray ships this module's classes to its workers by value: they need not find `tests`
    on their path (a worker's directory is not always the repository)."""
    import ray.cloudpickle

    if __name__ != "__main__":
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


_by_value()


def main() -> None:
    import torch

    from trainer.async_grpo import train_async
    from trainer.grpo import GRPOConfig

    torch.set_num_threads(1)
    config = GRPOConfig.model_validate(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
    train_async(config, actor_class=MixedRewardActor)


if __name__ == "__main__":
    main()
