"""Copy-on-write states: isolation, atomicity, hashing, diffs and views."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from runtime.env.nodes import plain
from runtime.env.state import MISSING, Change, State
from runtime.env.views import DictView, MutDictView, TxnClosedError


def small_db() -> dict:
    return {
        "users": {
            "sara_doe_1": {"name": "Sara", "membership": "gold", "reservations": ["ZFA04Y"]},
            "tom_lee_2": {"name": "Tom", "membership": "regular", "reservations": []},
        },
        "reservations": {
            "ZFA04Y": {"status": "active", "flights": [{"number": "HAT001", "price": 100}],
                       "payment_history": [{"amount": 100, "kind": "payment"}]},
            "AB12CD": {"status": "active", "flights": [], "payment_history": []},
        },
        "meta": {"version": 1},
    }


def big_db(n: int = 2000) -> dict:
    return {"reservations": {f"R{i:05d}": {"status": "active", "n": i} for i in range(n)},
            "flights": {f"F{i}": {"seats": i} for i in range(50)}}


# ---------------------------------------------------------------- isolation and atomicity


def test_from_json_copies_input_once():
    data = small_db()
    s = State.from_json(data)
    data["users"]["sara_doe_1"]["name"] = "changed"
    assert s.root.users["sara_doe_1"].name == "Sara"


def test_commit_leaves_the_base_untouched_and_forks_are_isolated():
    s0 = State.from_json(small_db())
    a, b = s0.fork(), s0.fork()
    ta = a.edit()
    ta.root.reservations["ZFA04Y"].status = "cancelled"
    a1 = ta.commit()
    tb = b.edit()
    tb.root.reservations["ZFA04Y"].flights.append({"number": "HAT002", "price": 50})
    b1 = tb.commit()
    assert s0.to_json() == small_db()
    assert a1.root.reservations.ZFA04Y.status == "cancelled"
    assert len(a1.root.reservations.ZFA04Y.flights) == 1
    assert b1.root.reservations.ZFA04Y.status == "active"
    assert len(b1.root.reservations.ZFA04Y.flights) == 2


def test_discarded_transaction_changes_nothing_and_refuses_writes():
    s0 = State.from_json(small_db())
    before = s0.hash()
    txn = s0.edit()
    res = txn.root.reservations["ZFA04Y"]
    res.status = "cancelled"
    del txn.root.users["tom_lee_2"]
    txn.discard()
    assert s0.hash() == before and s0.to_json() == small_db()
    with pytest.raises(TxnClosedError):
        res.status = "x"


def test_committed_views_refuse_writes():
    s0 = State.from_json(small_db())
    txn = s0.edit()
    users = txn.root.users
    txn.commit()
    with pytest.raises(TxnClosedError):
        users["new"] = {}


def test_path_copying_copies_only_the_changed_path_once():
    s0 = State.from_json(big_db())
    txn = s0.edit()
    resv = txn.root.reservations
    for i in range(0, 2000, 7):  # many writes under one big dict: it is copied once
        resv[f"R{i:05d}"].status = "cancelled"
    first_copy = txn._root["reservations"]
    resv["R00001"].status = "cancelled"
    assert txn._root["reservations"] is first_copy
    s1 = txn.commit()
    assert s1._root["flights"] is s0._root["flights"]  # untouched subtree shared
    assert s1._root["reservations"]["R00003"] is s0._root["reservations"]["R00003"]
    assert s1._root["reservations"]["R00000"] is not s0._root["reservations"]["R00000"]


def test_stale_view_after_sibling_write_still_writes_into_the_tree():
    s0 = State.from_json(small_db())
    txn = s0.edit()
    r1 = txn.root.reservations
    txn.root.reservations["AB12CD"].status = "cancelled"  # copies `reservations` via another access
    r1["ZFA04Y"].status = "cancelled"  # the first view must see and write the same copy
    s1 = txn.commit()
    assert s1.root.reservations.AB12CD.status == "cancelled"
    assert s1.root.reservations.ZFA04Y.status == "cancelled"


def test_list_views_follow_their_elements_and_removed_elements_detach():
    s0 = State.from_json({"xs": [{"v": 1}, {"v": 2}, {"v": 3}]})
    txn = s0.edit()
    xs = txn.root.xs
    second = xs[1]
    xs.insert(0, {"v": 0})
    second.v = 20  # still the element that was at index 1, now at 2
    gone = xs.pop(0)
    gone.v = 99  # a removed element: writes do not show in the tree
    xs.sort(key=lambda e: -e.v)
    s1 = txn.commit()
    assert s1.to_json() == {"xs": [{"v": 20}, {"v": 3}, {"v": 1}]}
    assert s0.to_json() == {"xs": [{"v": 1}, {"v": 2}, {"v": 3}]}


def test_assigning_views_stores_plain_data_without_aliasing():
    s0 = State.from_json(small_db())
    txn = s0.edit()
    root = txn.root
    root.users["sara_doe_1"].name = "Sara D."  # the user node is now owned by the txn
    root.users["copy"] = root.users["sara_doe_1"]
    root.users["copy"].name = "Other"
    root.archive = {"r": root.reservations["AB12CD"]}  # a committed subtree: shared
    s1 = txn.commit()
    assert s1.root.users.sara_doe_1.name == "Sara D."
    assert s1.root.users["copy"].name == "Other"
    assert s1._root["archive"]["r"] is s0._root["reservations"]["AB12CD"]


def test_rejects_non_json_data():
    with pytest.raises(TypeError, match="not JSON data"):
        State.from_json({"a": {1, 2}})
    with pytest.raises(TypeError, match="keys must be str"):
        State.from_json({"a": {1: 2}})
    txn = State.from_json({}).edit()
    with pytest.raises(TypeError):
        txn.root["x"] = object()


# ---------------------------------------------------------------- hashing


def test_hash_equal_content_equal_hash_whatever_the_history():
    s0 = State.from_json(small_db())
    txn = s0.edit()
    txn.root.reservations["ZFA04Y"].status = "cancelled"
    txn.root.meta.version = 2
    edited = txn.commit()
    direct = small_db()
    direct["reservations"]["ZFA04Y"]["status"] = "cancelled"
    direct["meta"]["version"] = 2
    reordered = dict(reversed(list(direct.items())))  # key order does not matter
    assert edited.hash() == State.from_json(direct).hash() == State.from_json(reordered).hash()
    assert edited.hash() != s0.hash()
    assert edited == State.from_json(direct)


def test_hash_is_deterministic_and_distinguishes_number_kinds():
    assert State.from_json({"a": 1}).hash() == State.from_json({"a": 1}).hash()
    hashes = {State.from_json({"a": v}).hash() for v in (1, 1.0, True, "1", None, [1], {"1": 1})}
    assert len(hashes) == 7
    assert State.from_json({"a": "x", "b": ""}).hash() != State.from_json({"a": "", "b": "x"}).hash()
    assert State.from_json([[], [[]]]).hash() != State.from_json([[[]], []]).hash()


def test_hash_after_an_edit_only_rehashes_the_changed_path():
    s0 = State.from_json(big_db())
    s0.hash()
    txn = s0.edit()
    txn.root.flights["F1"].seats = 0
    s1 = txn.commit()
    # untouched subtrees keep their memo; only the root and the changed path are new
    assert s1._root["reservations"]._h is not None
    assert s1._root["flights"]._h is None and s1._root._h is None
    assert s1.hash() != s0.hash()
    assert s1._root["flights"]["F2"]._h is not None


def test_pickle_roundtrip_keeps_content():
    s0 = State.from_json(small_db())
    s1 = pickle.loads(pickle.dumps(s0))
    assert s1.hash() == s0.hash() and s1.to_json() == small_db()


# ---------------------------------------------------------------- diff


def test_diff_reports_changes_insertions_and_deletions_in_order():
    s0 = State.from_json(small_db())
    txn = s0.edit()
    root = txn.root
    root.reservations["ZFA04Y"].status = "cancelled"
    root.reservations["ZFA04Y"].payment_history.append({"amount": -100, "kind": "refund"})
    root.reservations["NEW001"] = {"status": "active", "flights": [], "payment_history": []}
    del root.users["tom_lee_2"]
    root.meta.version = 1.0  # an int that became a float is a change
    s1 = txn.commit()
    assert s0.diff(s1) == [
        Change(("meta", "version"), 1, 1.0),
        Change(("reservations", "NEW001"), MISSING, {"status": "active", "flights": [], "payment_history": []}),
        Change(("reservations", "ZFA04Y", "payment_history", 1), MISSING, {"amount": -100, "kind": "refund"}),
        Change(("reservations", "ZFA04Y", "status"), "active", "cancelled"),
        Change(("users", "tom_lee_2"), {"name": "Tom", "membership": "regular", "reservations": []}, MISSING),
    ]
    assert s1.diff(s0)[0] == Change(("meta", "version"), 1.0, 1)
    assert s0.diff(s0.fork()) == []


def test_diff_of_unrelated_equal_states_is_empty_and_list_shrink_is_a_deletion():
    a = State.from_json({"xs": [1, 2, 3], "d": {"k": {"z": 1}}})
    b = State.from_json({"d": {"k": {"z": 1}}, "xs": [1, 2]})
    assert a.diff(State.from_json(a.to_json())) == []
    assert a.diff(b) == [Change(("xs", 2), 3, MISSING)]


def test_change_values_are_plain_copies():
    s0 = State.from_json({"a": {"b": [1]}})
    txn = s0.edit()
    txn.root.a.b.append(2)
    s1 = txn.commit()
    (change,) = s0.diff(s1)
    assert type(change.after) is int and change.after == 2


# ---------------------------------------------------------------- views


def test_read_views_attribute_access_methods_and_equality():
    s = State.from_json({"items": {"a": 1}, "get": 2, "_secret": 3, "plain": {"x": [1, {"y": 2}]}})
    root = s.root
    assert isinstance(root, DictView)
    assert callable(root.items) and root["items"] == {"a": 1}  # method names resolve to methods
    assert callable(root.get) and root["get"] == 2
    with pytest.raises(AttributeError):
        root._secret
    assert root["_secret"] == 3
    assert root.plain == {"x": [1, {"y": 2}]} and {"x": [1, {"y": 2}]} == root.plain
    assert root.plain.x[1].y == 2 and root.plain.x[-1] == {"y": 2}
    assert root.plain != {"x": []}
    assert plain(root.plain) == {"x": [1, {"y": 2}]} and type(plain(root.plain)) is dict
    assert json.loads(json.dumps(plain(root))) == s.to_json()
    assert copy.deepcopy(root.plain) == {"x": [1, {"y": 2}]}
    with pytest.raises(AttributeError):
        root.plain.z
    with pytest.raises(TypeError):
        root["plain"]["x"] = 1  # type: ignore[index]


def test_mutable_views_mapping_and_sequence_protocols():
    s0 = State.from_json({"d": {"a": 1, "b": 2}, "xs": [1, 2, 3], "keys": 5})
    txn = s0.edit()
    root = txn.root
    assert isinstance(root, MutDictView)
    d = root.d
    d.c = 3
    assert d.pop("a") == 1
    d.setdefault("e", {"deep": True})
    d.update({"b": 20})
    del d.c
    assert set(d.keys()) == {"b", "e"} and d.get("zz", 0) == 0 and d.e.deep is True
    xs = root.xs
    xs.append(4)
    xs.extend([5, 6])
    xs.remove(1)
    xs[0] = 22
    del xs[-1]
    xs.reverse()
    assert xs.index(22) == 3 and xs.count(3) == 1 and 4 in xs
    assert callable(root.keys) and root["keys"] == 5
    with pytest.raises(AttributeError):
        root.keys = 6  # a method name: item assignment is required
    root["keys"] = 6
    s1 = txn.commit()
    assert s1.to_json() == {"d": {"b": 20, "e": {"deep": True}}, "xs": [5, 4, 3, 22], "keys": 6}


def test_random_edits_match_a_plain_python_mirror():
    """Seeded random edits through views give the same content as the same edits on plain
    data (assignments deep-copied: views store plain data), and never touch the base."""
    import random

    rng = random.Random(7)
    base_data = {"a": {"x": [1, 2, {"y": 3}], "z": {"k": "v"}}, "b": [[1], [2, 3]], "c": 0}
    base = State.from_json(base_data)
    state, mirror = base, copy.deepcopy(base_data)
    for _ in range(40):  # transactions
        txn = state.edit()
        for _ in range(rng.randint(1, 6)):  # edits per transaction
            view, node = txn.root, mirror
            while True:  # walk to a random container
                keys = list(node) if isinstance(node, dict) else list(range(len(node)))
                kids = [k for k in keys if isinstance(node[k], (dict, list))]
                if not kids or rng.random() < 0.4:
                    break
                k = rng.choice(kids)
                view, node = view[k], node[k]
            value = rng.choice([rng.randint(0, 9), "s", None, {"n": rng.randint(0, 9)}, [rng.randint(0, 9)]])
            if isinstance(node, dict):
                op = rng.choice(["set", "set", "del"]) if node else "set"
                key = rng.choice(list(node)) if node and rng.random() < 0.5 else rng.choice("pqrs")
                if op == "del" and key in node:
                    del view[key]
                    del node[key]
                else:
                    view[key] = value
                    node[key] = copy.deepcopy(value)
            else:
                op = rng.choice(["append", "insert", "pop", "set"]) if node else "append"
                if op == "append":
                    view.append(value)
                    node.append(copy.deepcopy(value))
                elif op == "insert":
                    i = rng.randint(0, len(node))
                    view.insert(i, value)
                    node.insert(i, copy.deepcopy(value))
                elif op == "pop":
                    i = rng.randrange(len(node))
                    assert plain(view.pop(i)) == node.pop(i)
                else:
                    i = rng.randrange(len(node))
                    view[i] = value
                    node[i] = copy.deepcopy(value)
        if rng.random() < 0.2:
            txn.discard()
            mirror = state.to_json()
            continue
        state = txn.commit()
        assert state.to_json() == mirror
        assert state.hash() == State.from_json(mirror).hash()
    assert base.to_json() == base_data


def test_equality_is_exact_and_walks_only_what_differs():
    values = (1, 1.0, True, "1", None, [1], {"1": 1})
    for a in values:
        for b in values:
            assert (State.from_json({"k": a}) == State.from_json({"k": b})) == (a is b), (a, b)
    assert State.from_json({"a": 1, "b": [2, {"c": 3}]}) == State.from_json({"b": [2, {"c": 3}], "a": 1})
    assert State.from_json({"a": [1, 2]}) != State.from_json({"a": [1, 2, 3]})
    assert State.from_json({"a": 1}) != State.from_json({"a": 1, "b": 2})
    base = State.from_json({"big": {str(i): {"n": i} for i in range(1000)}, "x": {"y": 1}})
    one, two = base.edit(), base.edit()
    one.root.x.y, two.root.x.y = 2, 2
    s1, s2 = one.commit(), two.commit()
    assert s1 == s2 and s1 != base
    assert s1._root["big"] is s2._root["big"] and s1._root["x"]._h is None  # compared without hashing
