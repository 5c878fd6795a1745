"""Benchmark of the runtime environment, against references measured in the same run.

    python bench/env.py [--reps N]

For the default-size (τ²-bench scale) airline and retail databases — the real domains via
`eigenlang.load_domain` + `Environment.from_domain(seed=0)` when they load, otherwise a
synthetic database of the same shape and size (the table says which) — it measures:

- fork vs `copy.deepcopy` of the same state (goal: fork ≥ 100× faster),
- the state hash, cold and after one edit (the memo makes the second O(path)),
- a 10-call tool episode on a fresh fork,
- verifying one final state with a verifier written from the episode's diff (goal ≤ 10 ms).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.env import Environment, State, verifier_from_diff  # noqa: E402


def timed(fn: Callable[[], Any], reps: int) -> float:
    """Median seconds of `reps` runs of fn()."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------- the synthetic fallback


def synthetic_tool(ctx: Any, collection: str, key: str, field: str | None = None, value: Any = None) -> Any:
    """Read an entity, or set one of its fields (the fallback domain's only tool)."""
    entity = ctx.db[collection][key]
    if field is not None:
        entity[field] = value
    return entity


class _SyntheticTool:
    def __init__(self, name: str) -> None:
        self.name, self.kind, self.description = name, "write", "Read or update an entity."
        req = SimpleNamespace(required=True, default=None)
        opt = SimpleNamespace(required=False, default=None)
        self.params = {"collection": req, "key": req, "field": opt, "value": opt}
        self.requires: list = []
        self.impl = SimpleNamespace(file=Path(__file__), function="synthetic_tool")

    def params_json_schema(self) -> dict:
        return {"type": "object", "additionalProperties": False, "required": ["collection", "key"],
                "properties": {"collection": {"type": "string"}, "key": {"type": "string"},
                               "field": {"type": "string"}, "value": {}}}

    def openai_schema(self) -> dict:
        return {"type": "function", "function": {"name": self.name, "parameters": self.params_json_schema()}}


def synthetic_env(name: str) -> tuple[Environment, list[dict]]:
    """A database of the named domain's τ²-bench size and rough shape, one generic tool."""
    if name == "airline":
        dates = [f"2024-05-{d:02d}" for d in range(1, 31)]
        db = {
            "flights": {f"HAT{i:03d}": {"flight_number": f"HAT{i:03d}", "origin": "JFK", "destination": "LAX",
                                        "dates": {d: {"status": "available", "available_seats": {"economy": 10},
                                                      "prices": {"economy": 100}} for d in dates}}
                        for i in range(300)},
            "users": {f"user_{i}": {"user_id": f"user_{i}", "name": {"first_name": "A", "last_name": "B"},
                                    "payment_methods": {f"card_{i}": {"source": "credit_card", "id": f"card_{i}"}},
                                    "reservations": [f"R{i:05d}"]} for i in range(500)},
            "reservations": {f"R{i:05d}": {"reservation_id": f"R{i:05d}", "user_id": f"user_{i % 500}",
                                           "status": None, "flights": [{"flight_number": "HAT001", "price": 100}],
                                           "passengers": [{"first_name": "A", "last_name": "B"}],
                                           "payment_history": [{"payment_id": "card_1", "amount": 100}]}
                             for i in range(2000)},
        }
        coll, key, field, value = "reservations", "R00007", "status", "cancelled"
    else:
        db = {
            "products": {f"P{i}": {"product_id": f"P{i}", "variants": {f"I{i}_{j}": {"price": 10.0, "available": True}
                                                                        for j in range(20)}} for i in range(50)},
            "users": {f"user_{i}": {"user_id": f"user_{i}", "orders": [f"#W{i:07d}"],
                                    "address": {"city": "X", "zip": "00000"}} for i in range(500)},
            "orders": {f"#W{i:07d}": {"order_id": f"#W{i:07d}", "status": "pending",
                                      "items": [{"item_id": "I1_1", "price": 10.0}],
                                      "payment_history": [{"amount": 10.0}]} for i in range(1000)},
        }
        coll, key, field, value = "orders", "#W0000007", "status", "cancelled"
    domain = SimpleNamespace(name=f"synthetic-{name}", now="2024-05-15T15:00:00", schema=None,
                             user_schema=None, tools={"entity": _SyntheticTool("entity")}, user_tools={},
                             sync=None, generate=None, generate_user=None)
    env = Environment(domain, State.from_json(db))
    reads = [{"name": "entity", "arguments": {"collection": coll, "key": key}}] * 8
    writes = [{"name": "entity", "arguments": {"collection": coll, "key": key, "field": field, "value": value}},
              {"name": "entity", "arguments": {"collection": "users", "key": "user_3", "field": "note", "value": "x"}}]
    return env, reads[:4] + writes[:1] + reads[4:] + writes[1:]


# ---------------------------------------------------------------- the real domains


def real_env(name: str) -> tuple[Environment, list[dict]] | None:
    try:
        from eigenlang.domain import load_domain
    except ImportError:
        return None
    spec, diags = load_domain(ROOT / "domains" / name)
    if spec is None or spec.generate is None:
        first = diags.sorted()[0].render() if diags.errors else "no generator"
        print(f"  ({name}: domain not loadable: {first[:200]})")
        return None
    try:
        env = Environment.from_domain(spec, seed=0)
    except Exception as exc:  # a domain still being written: fall back, and say why
        print(f"  ({name}: from_domain failed: {type(exc).__name__}: {str(exc)[:200]})")
        return None
    return env, (airline_episode(env) if name == "airline" else retail_episode(env))


def airline_episode(env: Environment) -> list[dict]:
    """Ten calls around one reservation; the first reservation (in id order) for which all ten
    succeed, so that the episode really writes (set-up work, not timed)."""
    db = env.db.root
    best: list[dict] = []
    for rid in sorted(db.reservations)[:300]:
        res = db.reservations[rid]
        if res.get("status") == "cancelled" or not res.flights:
            continue
        for extra_nonfree in (0, 1):
            episode = _airline_calls(db, rid, extra_nonfree)
            if all(r.ok for r in env.fork().replay(episode)):
                return episode
            best = best or episode
    return best


def _airline_calls(db: Any, rid: str, extra_nonfree: int) -> list[dict]:
    res = db.reservations[rid]
    uid, leg = res.user_id, res.flights[0]
    pay = next((k for k, m in db.users[uid].payment_methods.items() if m.source == "credit_card"),
               next(iter(db.users[uid].payment_methods)))
    return [
        {"name": "get_user_details", "arguments": {"user_id": uid}},
        {"name": "get_reservation_details", "arguments": {"reservation_id": rid}},
        {"name": "list_all_airports", "arguments": {}},
        {"name": "search_direct_flight", "arguments": {"origin": res.origin, "destination": res.destination,
                                                       "date": leg.date}},
        {"name": "get_flight_status", "arguments": {"flight_number": leg.flight_number, "date": leg.date}},
        {"name": "calculate", "arguments": {"expression": "(100 + 50) * 2"}},
        {"name": "update_reservation_baggages", "arguments": {
            "reservation_id": rid, "total_baggages": res.total_baggages + 1,
            "nonfree_baggages": res.nonfree_baggages + extra_nonfree, "payment_id": pay}},
        {"name": "get_reservation_details", "arguments": {"reservation_id": rid}},
        {"name": "cancel_reservation", "arguments": {"reservation_id": rid}},
        {"name": "get_user_details", "arguments": {"user_id": uid}},
    ]


def retail_episode(env: Environment) -> list[dict]:
    db = env.db.root
    oid, order = next((k, o) for k, o in db.orders.items() if o.status == "pending")
    uid = order.user_id
    user = db.users[uid]
    return [
        {"name": "find_user_id_by_email", "arguments": {"email": user.email}},
        {"name": "get_user_details", "arguments": {"user_id": uid}},
        {"name": "get_order_details", "arguments": {"order_id": oid}},
        {"name": "get_product_details", "arguments": {"product_id": order["items"][0].product_id}},
        {"name": "list_all_product_types", "arguments": {}},
        {"name": "calculate", "arguments": {"expression": "(129.99 + 45) * 2 - 10"}},
        {"name": "modify_user_address", "arguments": {"user_id": uid, "address1": "1 Main St", "address2": "",
                                                      "city": "Austin", "state": "TX", "country": "USA",
                                                      "zip": "78701"}},
        {"name": "get_order_details", "arguments": {"order_id": oid}},
        {"name": "cancel_pending_order", "arguments": {"order_id": oid, "reason": "no longer needed"}},
        {"name": "get_order_details", "arguments": {"order_id": oid}},
    ]


# ---------------------------------------------------------------- measuring


def measure(name: str, reps: int) -> list[tuple]:
    got = real_env(name)
    source = "domains/" + name
    if got is None:
        got, source = synthetic_env(name), "synthetic (domain not loadable yet)"
    env, episode = got
    rows: list[tuple] = []
    print(f"\n{name}: {source}; {len(env.db.to_json().get('reservations', env.db.to_json().get('orders', {})))} "
          f"{'reservations' if name == 'airline' else 'orders'}")

    plain_db = env.db.to_json()
    t_deep = timed(lambda: copy.deepcopy(plain_db), max(3, reps // 4))
    n_forks = 10_000
    t_fork = timed(lambda: [env.fork() for _ in range(n_forks)], 3) / n_forks
    rows.append((name, "fork (Environment.fork)", t_fork, t_deep, "deepcopy", t_deep / t_fork, "≥100×",
                 t_deep / t_fork >= 100))

    cold = timed(lambda: State.from_json(plain_db).hash(), 3) - timed(lambda: State.from_json(plain_db), 3)
    key = next(iter(plain_db))
    inner = next(iter(plain_db[key]))

    def edit_and_hash() -> None:
        txn = env.db.edit()
        txn.root[key][inner]["_bench"] = 1
        txn.commit().hash()

    env.db.hash()
    warm = timed(edit_and_hash, reps)
    rows.append((name, "hash after one edit", warm, cold, "cold hash", cold / warm, "", None))

    results: list = []

    def episode_run() -> None:
        results[:] = env.fork().replay(episode)

    t_episode = timed(episode_run, reps)
    ok = sum(r.ok for r in results)
    rows.append((name, f"10-call episode ({ok}/10 ok)", t_episode, None, "", None, "", None))

    final = env.fork()
    final.replay(episode)
    verifier = verifier_from_diff(env, final)
    verifier.check(env, final, [])  # compiles the assertions once (cached per verifier)
    passed = verifier.check(env, final, []).passed
    t_verify = timed(lambda: verifier.check(env, final, []), reps)
    rows.append((name, f"verify final state ({len(verifier.assertions)} assertions, "
                 f"{'pass' if passed else 'FAIL'})", t_verify, None, "", None, "≤10 ms", t_verify <= 0.010))
    return rows


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for name in ("airline", "retail"):
        rows += measure(name, args.reps)
    print()
    head = f"{'domain':8} {'measure':52} {'time':>10} {'reference':>22} {'ratio':>10} {'goal':>7} met"
    print(head)
    print("-" * len(head))
    for domain, what, t, ref, ref_name, ratio, goal, met in rows:
        ref_text = f"{fmt(ref)} {ref_name}" if ref is not None else "-"
        ratio_text = f"{ratio:,.0f}×" if ratio is not None else "-"
        met_text = "" if met is None else ("yes" if met else "NO")
        print(f"{domain:8} {what:52} {fmt(t):>10} {ref_text:>22} {ratio_text:>10} {goal:>7} {met_text}")
    return 0 if all(r[7] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
