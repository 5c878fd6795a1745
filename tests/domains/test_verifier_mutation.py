"""Per domain: a verifier built from the state that a gold action produces passes on that
state and catches single-field perturbations of the entities the action touched (≥ 95%)."""

from __future__ import annotations

import json

import pytest

from eigenlang.domain import load_domain
from runtime.env import Environment
from runtime.env.state import MISSING
from runtime.env.verifier import verifier_from_diff


def gold_actions(domain: str, env: Environment):
    """Candidate gold write calls, tried in order until one succeeds within the policy."""
    db = env.db.to_json()
    if domain == "airline":
        for rid in sorted(db["reservations"]):
            yield "cancel_reservation", {"reservation_id": rid}
    elif domain == "retail":
        for oid in sorted(db["orders"]):
            yield "cancel_pending_order", {"order_id": oid, "reason": "no longer needed"}
    else:
        for c in db["customers"]:
            for lid in c["line_ids"]:
                yield "enable_roaming", {"customer_id": c["customer_id"], "line_id": lid}


def perturbed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "_x"
    if value is None:
        return "x"
    return None  # containers: their leaves are perturbed one by one


def leaves(value, prefix=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, prefix + (i,))
    else:
        yield prefix, value


@pytest.mark.parametrize("domain", ["airline", "retail", "telecom"])
def test_verifier_catches_single_field_perturbations(domain: str):
    spec, diags = load_domain(domain)
    assert spec is not None, diags.render()
    initial = Environment.from_domain(spec, seed=3, size=0.1)
    for name, args in gold_actions(domain, initial):
        final = initial.fork()
        result = final.call(name, args)
        if result.ok and not result.violations:  # a gold action keeps the policy
            break
    else:
        pytest.fail(f"no gold action succeeded in {domain}")
    changes = initial.db.diff(final.db)
    assert changes, "the gold action changed nothing"
    verifier = verifier_from_diff(initial, final)
    assert verifier.check(initial, final).passed
    assert not verifier.check(initial, initial).passed  # the untouched state fails

    # entities touched: the first two path steps of each change (table, key or index)
    touched = sorted({c.path[:2] for c in changes}, key=repr)
    total = caught = 0
    for entity in touched:
        value = final.db.get(entity)
        if value is MISSING:
            continue
        for rel, leaf in leaves(json.loads(json.dumps(value))):
            new = perturbed(leaf)
            if new is None:
                continue
            bad = final.fork()
            txn = bad.db.edit()
            node = txn.root
            path = entity + rel
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = new
            bad.db = txn.commit()
            total += 1
            caught += not verifier.check(initial, bad).passed
    print(f"{domain}: {name} caught {caught}/{total} single-field perturbations")
    assert total >= 5
    assert caught / total >= 0.95, f"{domain}: caught {caught}/{total}"
