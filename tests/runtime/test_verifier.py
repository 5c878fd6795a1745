"""Verifiers: pass/fail with failures in words, expected diffs, communication checks, and the
mutation property (a verifier written from a gold edit catches every single-field change)."""

from __future__ import annotations

import random

import pytest

from eigenlang.domain import load_domain
from runtime.env import Environment, Verifier, verifier_from_diff
from runtime.env.verifier import Assertion, ExpectedChange, normalise_text

DOMAIN_YAML = """\
eigenlang: 1
domain: miniair
description: A small airline for verifier tests.
policy: policy.md
now: "2024-05-15T15:00:00"
database:
  root: FlightDB
  models:
    FlightDB:
      users: "dict[str, User]"
      reservations: "dict[str, Reservation]"
    User:
      user_id: str
      name: str
      membership: "enum[regular, silver, gold]"
      reservations: "list[str]"
      payment_methods: "dict[str, Payment]"
    Payment:
      id: str
      source: "enum[credit_card, gift_card, certificate]"
      amount: {type: "optional[float]", default: null}
    Reservation:
      reservation_id: str
      user_id: str
      status: {type: "optional[enum[cancelled]]", default: null}
      cabin: "enum[economy, business]"
      insurance: bool
      total_baggages: int
      flights: "list[Flight]"
      payment_history: "list[PaymentRecord]"
    Flight:
      flight_number: str
      date: str
      price: float
    PaymentRecord:
      payment_id: str
      amount: float
  generate: generate.py:build
tools: {}
"""

GENERATE_PY = """\
import random

def build(seed, size=1.0):
    rng = random.Random(seed)
    users, reservations = {}, {}
    for u in range(max(2, int(8 * size))):
        uid = f"user_{u}"
        card = f"credit_card_{u}"
        users[uid] = {"user_id": uid, "name": rng.choice(["Ana", "Bo", "Cy"]),
                      "membership": rng.choice(["regular", "silver", "gold"]), "reservations": [],
                      "payment_methods": {card: {"id": card, "source": "credit_card", "amount": None},
                                          f"gift_card_{u}": {"id": f"gift_card_{u}", "source": "gift_card",
                                                             "amount": float(rng.randint(0, 300))}}}
        for r in range(2):
            rid = f"R{u}{r}X{rng.randint(10, 99)}"
            price = float(rng.randint(50, 900))
            reservations[rid] = {
                "reservation_id": rid, "user_id": uid, "status": None,
                "cabin": rng.choice(["economy", "business"]), "insurance": rng.random() < 0.5,
                "total_baggages": rng.randint(0, 3),
                "flights": [{"flight_number": f"HAT{rng.randint(100, 999)}", "date": "2024-05-20", "price": price}],
                "payment_history": [{"payment_id": card, "amount": price}]}
            users[uid]["reservations"].append(rid)
    return {"users": users, "reservations": reservations}
"""


@pytest.fixture(scope="module")
def domain(tmp_path_factory):
    root = tmp_path_factory.mktemp("miniair")
    (root / "domain.yaml").write_text(DOMAIN_YAML)
    (root / "policy.md").write_text("Be helpful.\n")
    (root / "generate.py").write_text(GENERATE_PY)
    spec, diags = load_domain(root)
    assert spec is not None, diags.render()
    return spec


@pytest.fixture
def initial(domain):
    return Environment.from_domain(domain, seed=11)


def gold_edit(env: Environment) -> Environment:
    """Cancel the first reservation with a refund, and book a new one for the same user."""
    final = env.fork()
    txn = final.db.edit()
    db = txn.root
    rid = sorted(db.reservations)[0]
    res = db.reservations[rid]
    res.status = "cancelled"
    res.payment_history.append({"payment_id": res.payment_history[0].payment_id,
                                "amount": -res.payment_history[0].amount})
    db.reservations["NEW001"] = {
        "reservation_id": "NEW001", "user_id": res.user_id, "status": None, "cabin": "economy",
        "insurance": False, "total_baggages": 1,
        "flights": [{"flight_number": "HAT321", "date": "2024-05-21", "price": 120.0}],
        "payment_history": [{"payment_id": f"gift_card_{res.user_id[5:]}", "amount": 120.0}]}
    user = db.users[res.user_id]
    user.reservations.append("NEW001")
    user.payment_methods[f"gift_card_{res.user_id[5:]}"].amount -= 120.0
    final.db = txn.commit()
    return final


def with_edit(env: Environment, path: tuple, value) -> Environment:
    out = env.fork()
    txn = out.db.edit()
    node = txn.root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    out.db = txn.commit()
    return out


# ---------------------------------------------------------------- pass / fail


def test_verifier_from_diff_passes_on_gold_and_fails_on_initial(initial):
    final = gold_edit(initial)
    v = verifier_from_diff(initial, final)
    assert v.check(initial, final, []).passed
    rid = sorted(initial.db.root.reservations)[0]
    texts = [a.expr for a in v.assertions]
    assert f'db.reservations["{rid}"].status == "cancelled"' in texts
    assert '"NEW001" in db.reservations' in texts
    assert 'db.reservations["NEW001"].flights[0].price == 120.0' in texts
    assert f'len(db.reservations["{rid}"].payment_history) == 2' in texts
    result = v.check(initial, initial, [])
    assert not result.passed
    assert f"db.reservations[\"{rid}\"].status: expected 'cancelled', found null" in result.failures
    assert any(f.startswith('db.reservations["NEW001"]: expected ') and f.endswith("found nothing")
               for f in result.failures)


def test_nothing_else_changed_catches_extra_changes_only_with_expected_diff(initial):
    final = gold_edit(initial)
    extra = with_edit(final, ("users", "user_1", "name"), "Zed")
    strict = verifier_from_diff(initial, final)
    loose = verifier_from_diff(initial, final, nothing_else=False)
    assert loose.expected_diff is None and loose.check(initial, extra).passed
    result = strict.check(initial, extra)
    assert not result.passed and result.failures == [f"db.users[\"user_1\"].name: expected "
                                                     f"{initial.db.root.users.user_1.name!r}, found 'Zed'"]


def test_expected_diff_numbers_and_deletions(initial):
    rid = sorted(initial.db.root.reservations)[1]
    final = initial.fork()
    txn = final.db.edit()
    txn.root.reservations[rid].total_baggages = 5
    del txn.root.reservations[rid].payment_history[0]
    del txn.root.users.user_0.payment_methods["gift_card_0"]
    final.db = txn.commit()
    v = Verifier(expected_diff=[
        ExpectedChange(path=["db", "reservations", rid, "total_baggages"], after=5.0),  # 5.0 == 5 here
        ExpectedChange(path=["db", "reservations", rid, "payment_history", 0], deleted=True),
        ExpectedChange(path=["db", "users", "user_0", "payment_methods", "gift_card_0"], deleted=True)])
    assert v.check(initial, final).passed
    generated = verifier_from_diff(initial, final)
    assert generated.check(initial, final).passed
    assert '"gift_card_0" not in db.users["user_0"].payment_methods' in [a.expr for a in generated.assertions]
    assert not generated.check(initial, initial).passed
    bad = Verifier(expected_diff=[ExpectedChange(path=["nowhere", "x"], after=1)])
    assert "must start with 'db' or 'user_db'" in bad.check(initial, final).failures[0]


def test_bad_assertions_are_failures_not_exceptions(initial):
    v = Verifier(assertions=[Assertion(expr="db.reservations[", description="broken"),
                             Assertion(expr="db.nothing.here == 1", description="missing key"),
                             Assertion(expr="len(db.users) > 1000", description="too few users"),
                             Assertion(expr="initial_db.users == db.users")])
    result = v.check(initial, initial)
    assert not result.passed and len(result.failures) == 3
    assert result.failures[0].startswith("db.reservations[: syntax error")
    assert result.failures[1].startswith("missing key: ") and "nothing" in result.failures[1]
    assert result.failures[2] == "too few users: does not hold"


def test_communicate_normalises_case_and_numbers():
    assert normalise_text("Total: $1,234.00 for  Two") == "total: $1234 for two"
    assert normalise_text("0.50 and 12.340 and 007") == "0.5 and 12.34 and 7"
    messages = [{"role": "user", "content": "it cost 4321"},
                {"role": "assistant", "content": [{"type": "text", "text": "That was $1,234.00."}]},
                {"role": "assistant", "content": "A REFUND OF $50.00 is on its way."}]
    v = Verifier(communicate=["1234", "refund of $50"])
    assert v.check(None, None, messages).passed  # communication alone needs no state
    assert v.check(None, None, messages[:2]).failures == ["the assistant never said 'refund of $50'"]
    assert Verifier(communicate=["4321"]).check(None, None, messages).failures == [
        "the assistant never said '4321'"]  # only assistant messages count


def test_verifier_round_trips_as_json(initial):
    final = gold_edit(initial)
    v = verifier_from_diff(initial, final, communicate=["cancelled"])
    again = Verifier.model_validate_json(v.model_dump_json())
    assert again == v
    msgs = [{"role": "assistant", "content": "Your reservation is cancelled."}]
    assert again.check(initial, final, msgs).passed
    assert again.check(initial, final, []).failures == ["the assistant never said 'cancelled'"]


# ---------------------------------------------------------------- the mutation property


def _perturb(value, rng: random.Random):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([-1, 1])
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return value + "X"
    return "X"  # None


def _leaf_paths(value, prefix: tuple):
    if isinstance(value, dict):
        for k in value:
            yield from _leaf_paths(value[k], prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaf_paths(v, prefix + (i,))
    else:
        yield prefix, value


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_single_field_perturbation_of_touched_entities_is_caught(domain, seed):
    initial = Environment.from_domain(domain, seed=seed)
    final = gold_edit(initial)
    touched = sorted({c.path[:2] for c in initial.db.diff(final.db)})
    assert len(touched) == 3  # the cancelled reservation, the new one, the user
    strict = verifier_from_diff(initial, final)
    loose = verifier_from_diff(initial, final, nothing_else=False)
    rng = random.Random(seed)
    total = caught = caught_loose = 0
    for entity in touched:
        for path, value in _leaf_paths(final.db.get(entity), entity):
            mutant = with_edit(final, path, _perturb(value, rng))
            total += 1
            caught += not strict.check(initial, mutant).passed
            caught_loose += not loose.check(initial, mutant).passed
    assert total >= 30
    assert caught == total  # with the expected diff: every perturbation is caught
    assert caught_loose >= 0.95 * total  # assertions alone (untouched parts asserted unchanged)
    assert any(a.expr.endswith(f'== initial_db.users["{touched[2][1]}"].name') for a in loose.assertions)
