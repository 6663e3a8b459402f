"""First seen, last seen, new and fixed across runs, and what a check in ERROR leaves alone."""

from __future__ import annotations

from plugins.auditing import Finding
from plugins.auditing.store import reconcile


def f(resource: str, status: str, check: str = "aws.a.b") -> Finding:
    return Finding(check, status, "high", "aws", "1", resource, "T", "global", "m", "t", "r", "fix", "", "", "")


def test_first_seen_new_and_fixed_across_runs() -> None:
    one = reconcile({}, [f("x", "FAIL"), f("y", "PASS"), f("z", "FAIL")], "T1")
    assert [x.resource_id for x in one.new] == ["x", "z"] and one.fixed == []
    run2 = [f("x", "MUTED"), f("y", "FAIL"), f("z", "PASS")]
    two = reconcile(one.state, run2, "T2")
    x, y, z = run2
    assert x.first_seen == "T1" and not x.new  # muting a standing failure does not reset its age
    assert y.first_seen == "T2" and y.new  # PASS → FAIL opens it
    assert z.first_seen == "T2" and [e["resource_id"] for e in two.fixed] == ["z"]
    assert all(x.last_seen == "T2" for x in run2)
    three = reconcile(two.state, [f("y", "FAIL")], "T3")  # x is gone: its resource was deleted
    assert [e["resource_id"] for e in three.fixed] == ["x"] and three.fixed[0]["key"] == x.key
    assert set(three.state) == {run2[1].key}


def test_a_check_in_error_keeps_what_was_known() -> None:
    one = reconcile({}, [f("x", "FAIL"), f("other", "FAIL", check="aws.c.d")], "T1")
    two = reconcile(one.state, [f("1", "ERROR"), f("other", "FAIL", check="aws.c.d")], "T2")
    assert two.fixed == [] and two.new == []
    kept = two.state[f("x", "FAIL").key]
    assert kept["first_seen"] == "T1" and kept["last_seen"] == "T1"
    three = reconcile(two.state, [f("x", "FAIL"), f("other", "FAIL", check="aws.c.d")], "T3")
    assert three.new == [] and three.state[f("x", "FAIL").key]["first_seen"] == "T1"


def test_paged_flag_survives_only_while_open() -> None:
    one = reconcile({}, [f("x", "FAIL")], "T1")
    one.state[f("x", "FAIL").key]["paged"] = True
    two = reconcile(one.state, [f("x", "FAIL")], "T2")
    assert two.state[f("x", "FAIL").key]["paged"] is True
    three = reconcile(two.state, [f("x", "PASS")], "T3")
    assert three.fixed[0]["paged"] is True and three.state[f("x", "PASS").key]["paged"] is False
