"""The offline task recipes (`scenarios.py`, docs/CONTRACTS.md §7) of every domain and of the
mini test bank: gold paths are made of known tools with schema-valid arguments, recipes are
deterministic and never touch the world, several intents appear, and a realistic share of the
planned paths (not all, not few) succeeds when replayed on a fork.
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from eigenlang import load_domain
from runtime.env import Environment
from runtime.env.impls import load_impl, load_module
from runtime.workers.base import World

ROOT = Path(__file__).resolve().parents[2]
# (folder, world size): small worlds for speed, large enough to hold every kind of entity.
DOMAINS = {"airline": (ROOT / "domains" / "airline", 0.1), "retail": (ROOT / "domains" / "retail", 0.1),
           "telecom": (ROOT / "domains" / "telecom", 0.3), "mini": (ROOT / "tests" / "fixtures" / "mini", 1.0)}
SAMPLES = 200
LEVELS = {"easy": (2, 3), "medium": (3, 4), "hard": (5, 7)}
PLAN_KEYS = {"objective", "known", "gold_calls", "must", "must_not", "subgoals"}


@dataclass
class Recipes:
    spec: Any
    env: Environment
    world: World
    seed: Any
    task: Any


def _world(spec: Any, env: Environment) -> World:
    return World(domain=spec, db=env.db.to_json(),
                 user_db=env.user_db.to_json() if env.user_db is not None else None, now=spec.now)


@pytest.fixture(scope="module", params=list(DOMAINS))
def recipes(request) -> Recipes:
    folder, size = DOMAINS[request.param]
    spec, diags = load_domain(folder)
    assert spec is not None, diags
    assert spec.offline_seed is not None and spec.offline_task is not None
    env = Environment.from_domain(spec, 0, size=size)
    return Recipes(spec, env, _world(spec, env), load_impl(spec.offline_seed), load_impl(spec.offline_task))


def _difficulty(rng: random.Random, spec: Any) -> dict:
    level = rng.choice(list(LEVELS))
    write_params = sorted({p for t in spec.tools.values() if t.kind == "write" for p in t.params})
    return {"level": level, "tool_calls": rng.randint(*LEVELS[level]), "branching": 0, "ambiguity": 0.0,
            "error_prone": sorted(rng.sample(write_params, min(len(write_params), rng.randint(0, 2))))}


def _sample(r: Recipes, i: int, world: World | None = None) -> tuple[dict, dict]:
    """(scenario seed, planned task) for sample i, the way the offline workers call them."""
    world = world or r.world
    rng = random.Random(i)
    difficulty = _difficulty(rng, r.spec)
    picked = r.seed(rng, world, difficulty)
    scenario = {"persona": {"name": "Ana", "tone": "polite", "expertise": "novice", "constraints": []},
                "context": picked["context"], "difficulty": difficulty, "intent": picked["intent"]}
    return scenario, r.task(rng, world, scenario)


def _digest(world: World) -> str:
    text = json.dumps([world.db, world.user_db], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _validators(spec: Any) -> dict[tuple[str, str], Any]:
    out = {}
    for side, tools in (("agent", spec.tools), ("user", spec.user_tools or {})):
        for name, tool in tools.items():
            schema = tool.params_json_schema()
            out[(side, name)] = jsonschema.validators.validator_for(schema)(schema)
    return out


# ------------------------------------------------------------------------------ tests
def test_recipes_plan_valid_deterministic_tasks(recipes: Recipes) -> None:
    validators = _validators(recipes.spec)
    before = _digest(recipes.world)
    for i in range(SAMPLES):
        scenario, plan = _sample(recipes, i)
        assert isinstance(scenario["intent"], str) and scenario["intent"]
        assert isinstance(scenario["context"], dict) and scenario["context"]
        assert PLAN_KEYS <= set(plan), f"sample {i}: missing {PLAN_KEYS - set(plan)}"
        assert isinstance(plan["objective"], str) and plan["objective"]
        assert plan["known"], f"sample {i} ({scenario['intent']}): the user knows nothing"
        assert plan["gold_calls"], f"sample {i} ({scenario['intent']}): no gold calls"
        for call in plan["gold_calls"]:
            side = call.get("side", "agent")
            validator = validators.get((side, call["name"]))
            assert validator is not None, f"sample {i}: unknown {side} tool {call['name']!r}"
            problems = [e.message for e in validator.iter_errors(call["arguments"])]
            assert not problems, f"sample {i}: {call['name']} {call['arguments']}: {problems}"
        json.dumps(plan)  # JSON-ready, as artifacts must be
        assert _sample(recipes, i) == (scenario, plan), f"sample {i} is not deterministic"
    assert _digest(recipes.world) == before, "a recipe mutated the world"


def test_intent_mix_and_feasible_share(recipes: Recipes) -> None:
    intents: collections.Counter = collections.Counter()
    feasible: collections.Counter = collections.Counter()
    for i in range(SAMPLES):
        scenario, plan = _sample(recipes, i)
        intents[scenario["intent"]] += 1
        results = recipes.env.fork().replay(plan["gold_calls"])
        feasible[scenario["intent"]] += all(r.ok and not r.violations for r in results)  # as TaskValidation
    share = sum(feasible.values()) / SAMPLES
    mix = ", ".join(f"{k} {v} ({feasible[k] / v:.0%} ok)" for k, v in intents.most_common())
    print(f"\n{recipes.spec.name}: feasible {share:.0%}; {mix}")
    assert len(intents) >= 4, intents
    assert 0.5 <= share <= 0.9, f"{recipes.spec.name}: feasible share {share:.2f} ({mix})"
    assert all(feasible[k] > 0 for k in intents), f"an intent is never feasible: {mix}"


def test_feasible_gold_paths_follow_the_domain_rules(recipes: Recipes) -> None:
    """Paths that run also satisfy the trajectory rules, as a compliant agent would run them."""
    rules = pytest.importorskip("runtime.env.rules")
    validation = pytest.importorskip("runtime.workers.offline.task_validation")
    checked = 0
    for i in range(60):
        _, plan = _sample(recipes, i)
        final = recipes.env.fork()
        if not all(r.ok and not r.violations for r in final.replay(plan["gold_calls"])):
            continue
        messages = validation.compliant_messages(recipes.spec, plan["gold_calls"], recipes.env)
        failures = rules.check_rules(recipes.spec, messages, recipes.env, final)
        assert not failures, f"sample {i}: {failures}"
        checked += 1
    assert checked > 0


def test_no_feasible_task_leaves_nothing_to_check(recipes: Recipes) -> None:
    """A feasible plan that changes nothing is a question: it must name what the agent tells
    (`inform`, the verifier's communicate items), each id or number of it shown by a gold
    tool output. Otherwise its verifier would pass an idle agent (`empty_verifier`)."""
    from runtime.env.rules import is_claim, source_tokens, tokens

    told = 0
    for i in range(SAMPLES):
        scenario, plan = _sample(recipes, i)
        final = recipes.env.fork()
        results = final.replay(plan["gold_calls"])
        if not all(r.ok and not r.violations for r in results):
            continue
        inform = plan.get("inform") or []
        if final.hash() == recipes.env.hash():
            assert inform, f"sample {i} ({scenario['intent']}) changes nothing and asks nothing: {plan['objective']}"
        if inform:
            told += 1
            seen = source_tokens(r.content for c, r in zip(plan["gold_calls"], results) if c.get("side") != "user")
            claims = [norm for v in inform for _, _, _, norm in tokens(v) if is_claim(norm)]
            assert all(c in seen for c in claims), f"sample {i}: {inform} not all shown by the gold outputs"
    assert told > 0, f"{recipes.spec.name} has no information task"


def test_bad_seeds_get_a_clear_error(recipes: Recipes) -> None:
    rng = random.Random(0)
    with pytest.raises(ValueError, match="unknown .*intent 'fly_to_the_moon'"):
        recipes.task(rng, recipes.world, {"intent": "fly_to_the_moon", "context": {}, "difficulty": {}})
    scenario, _ = _sample(recipes, 0)
    broken = dict(scenario, context={k: "NO-SUCH-ID" for k in scenario["context"]})
    with pytest.raises(ValueError, match="does not fit"):
        recipes.task(rng, recipes.world, broken)


# ------------------------------------------------------------------------------ telecom phone fixes
# τ²-bench's phone breakages (generate.FAULTS), alone and combined
FAULTS = [["airplane_mode_on"], ["unseat_sim_card"], ["data_mode_off"], ["user_abroad_roaming_off"],
          ["user_abroad_roaming_on"], ["break_apn_settings"], ["data_saver_mode_on"],
          ["bad_network_preference"], ["bad_vpn"], ["break_app_storage_permission"],
          ["break_apn_mms_setting"], ["bad_wifi_calling"],
          ["airplane_mode_on", "data_mode_off", "break_apn_mms_setting", "break_app_sms_permission"]]


@pytest.fixture(scope="module")
def telecom() -> tuple[Any, Any, dict]:
    spec, diags = load_domain(DOMAINS["telecom"][0])
    assert spec is not None, diags
    gen = load_module(spec.root / "generate.py")
    return spec, gen, gen.build(0, 0.3)


def _phone_works(spec: Any, phone_db: dict) -> bool:
    """Service, mobile data at full speed and picture messages (the domain's phone model)."""
    phone = load_module(spec.root / "phone.py")
    device, around = phone_db["device"], phone_db["surroundings"]
    return (device["network_connection_status"] == "connected" and phone.mobile_data_working(device, around)
            and phone.speed_test(device, around)[1] == "Excellent" and phone.can_send_mms(device, around))


@pytest.mark.parametrize("faults", FAULTS, ids=lambda f: "+".join(f))
def test_phone_troubleshooting_repairs_the_phone(telecom, faults: list) -> None:
    """With a broken phone the recipes offer `fix_phone`; its path, user-side steps included,
    solves the problem the customer reports (checked with the domain's own phone model)."""
    spec, gen, db = telecom
    env = Environment(spec, db, gen.build_user(0, 0.3, db, faults=faults))
    assert not _phone_works(spec, env.user_db.to_json())
    r = Recipes(spec, env, _world(spec, env), load_impl(spec.offline_seed), load_impl(spec.offline_task))
    found = [(s, p) for s, p in (_sample(r, i) for i in range(60)) if s["intent"] == "fix_phone"]
    assert found, "fix_phone never offered for a broken phone"
    for scenario, plan in found:
        assert any(c["side"] == "user" for c in plan["gold_calls"])
        final = env.fork()
        results = final.replay(plan["gold_calls"])
        assert all(x.ok and not x.violations for x in results), [x.content for x in results if not x.ok]
        stages = {v: k for k, v in r.seed.__globals__["troubleshoot"].SYMPTOMS.items()}
        stage = stages[scenario["context"]["symptom"]]
        phone_db = final.user_db.to_json()
        assert r.seed.__globals__["troubleshoot"].stage_ok(stage, phone_db["device"], phone_db["surroundings"]), plan


def test_healthy_phone_gets_no_troubleshooting(telecom) -> None:
    spec, gen, db = telecom
    env = Environment(spec, db, gen.build_user(0, 0.3, db, faults=[]))
    assert _phone_works(spec, env.user_db.to_json())
    r = Recipes(spec, env, _world(spec, env), load_impl(spec.offline_seed), load_impl(spec.offline_task))
    assert all(_sample(r, i)[0]["intent"] != "fix_phone" for i in range(60))


def test_locked_sim_is_handed_to_a_human(telecom) -> None:
    spec, gen, db = telecom
    env = Environment(spec, db, gen.build_user(0, 0.3, db, faults=["lock_sim_card_puk"]))
    r = Recipes(spec, env, _world(spec, env), load_impl(spec.offline_seed), load_impl(spec.offline_task))
    plan = next(p for s, p in (_sample(r, i) for i in range(40)) if s["intent"] == "fix_phone")
    assert plan["gold_calls"][-1]["name"] == "transfer_to_human_agents"
    assert all(x.ok for x in env.fork().replay(plan["gold_calls"]))
