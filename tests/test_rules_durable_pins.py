"""What durable-rules 2.0.28 really does, pinned down (see DURABLE_RULES.md): each trap
the engine module works around is reproduced here, in a child process since some of them
kill the process. If one of these tests fails, the library changed: re-read the engine's
workarounds before upgrading."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

HARNESS = """
import copy, itertools, json, sys, time
from durable import engine
engine._unix_now = time.monotonic

FIRED = []
STOP_AFTER = [10 ** 9]

class Host(engine.Host):
    def _run(self):
        pass
    def get_action(self, name):
        def action(c, complete):
            FIRED.append((name, sorted((c._m or {}).keys())))
            if len(FIRED) >= STOP_AFTER[0]:
                return  # never complete: ends durable-rules' dispatch loop
            complete(None)
        return action

host = Host()
G = {"$nex": {"$s": 1}}
names = itertools.count()

def register(rules):
    name = f"rs{next(names)}"
    host.register_rulesets({name: copy.deepcopy(rules)})
    return name

def fired(name, facts, sid="1"):
    del FIRED[:]
    for i, fact in enumerate(facts):
        try:
            host.assert_fact(name, dict(fact, sid=sid, id=f"f{i}"))
        except engine.MessageNotHandledException:
            pass
    return [rule for rule, _ in FIRED]
"""


def run(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HARNESS + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_delete_state_where_no_action_ran_segfaults_and_the_sentinel_avoids_it():
    crash = run("""
        name = register({"r": {"all": [{"m": {"$and": [G, {"type": "f"}]}}], "run": "r"}})
        fired(name, [{"type": "autre"}])
        host.delete_state(name, "1")
        print("survived")
    """)
    assert crash.returncode == -signal.SIGSEGV
    safe = run("""
        name = register({"r": {"all": [{"m": {"$and": [G, {"type": "f"}]}}], "run": "r"},
                         "s": {"all": [{"m": {"$and": [G, {"type": "sentinelle"}]}}], "run": "s"}})
        for sid in range(50):
            fired(name, [{"type": "sentinelle"}, {"type": "autre"}], sid=str(sid))
            host.delete_state(name, str(sid))
        print("survived")
    """)
    assert safe.returncode == 0 and "survived" in safe.stdout


def test_the_1025th_live_session_raises_memory_error_unless_sessions_are_deleted():
    capped = run("""
        name = register({"r": {"all": [{"m": {"$and": [G, {"type": "f"}]}}], "run": "r"}})
        for sid in range(1100):
            try:
                fired(name, [{"type": "f"}], sid=str(sid))
            except MemoryError:
                print("MemoryError at", sid)
                break
    """)
    assert "MemoryError at 1024" in capped.stdout
    cleaned = run("""
        name = register({"r": {"all": [{"m": {"$and": [G, {"type": "f"}]}}], "run": "r"}})
        for sid in range(3000):
            fired(name, [{"type": "f"}], sid=str(sid))
            host.delete_state(name, str(sid))
        print("ok")
    """)
    assert cleaned.returncode == 0 and "ok" in cleaned.stdout


def test_a_rule_matching_the_state_document_loops_and_the_guard_stops_it():
    result = run("""
        STOP_AFTER[0] = 200
        loop = register({"r": {"all": [{"m": {"$ex": {"id": 1}}}], "run": "r"}})
        print(len(fired(loop, [{"type": "f"}])))
        STOP_AFTER[0] = 10 ** 9
        guarded = register({"r": {"all": [{"m": {"$and": [G, {"$ex": {"id": 1}}]}}], "run": "r"}})
        print(len(fired(guarded, [{"type": "f"}])))
    """)
    assert result.stdout.split() == ["200", "1"]


def test_a_batch_runs_no_action_when_one_fact_matches_nothing():
    result = run("""
        name = register({"r": {"all": [{"m": {"$and": [G, {"type": "f"}]}}], "run": "r"}})
        try:
            host.assert_facts(name, [{"type": "f", "sid": "1", "id": "a"},
                                     {"type": "autre", "sid": "1", "id": "b"}])
        except engine.MessageNotHandledException:
            print("not handled")
        print(len(FIRED))
    """)
    assert result.stdout.split() == ["not", "handled", "0"]


def test_or_fires_a_rule_twice_for_one_fact():
    result = run("""
        name = register({"r": {"all": [{"m": {"$and": [G, {"$or": [{"a": 1}, {"b": 1}]}]}}],
                               "run": "r"}})
        print(len(fired(name, [{"a": 1, "b": 1}])))
    """)
    assert result.stdout.split() == ["2"]


def test_unknown_operators_fail_with_a_cryptic_code_or_silently_never_match():
    result = run("""
        try:
            register({"r": {"all": [{"m": {"$and": [G, {"$foo": {"a": 1}}]}}], "run": "r"}})
        except Exception as exc:
            print(exc)
        name = register({"r": {"all": [{"m": {"$and": [G, {"$nmt": {"a": "x.*"}}]}}], "run": "r"}})
        print("nmt", len(fired(name, [{"a": "abc"}, {"a": "xyz"}])))
    """)
    lines = result.stdout.splitlines()
    assert lines[0] == "Could not create ruleset, error code: 202"
    assert lines[1] == "nmt 0"


def test_a_comparison_with_a_missing_referenced_field_always_matches():
    """With a type test beside it (as in every compiled pattern), ``a < b`` and ``a >= b``
    both match a fact that has no ``b``: the loader adds ``$ex`` on every ``$m`` reference."""
    result = run("""
        for op in ("$lt", "$gte", "$eq", "$neq"):
            name = register({"r": {"all": [{"m": {"$and": [G, {"type": "f"},
                                                         {op: {"a": {"$m": "b"}}}]}}],
                                   "run": "r"}})
            print(op, len(fired(name, [{"type": "f", "a": 5}])))
        guarded = register({"r": {"all": [{"m": {"$and": [G, {"type": "f"}, {"$ex": {"b": 1}},
                                                          {"$lt": {"a": {"$m": "b"}}}]}}],
                                  "run": "r"}})
        print("guarded", len(fired(guarded, [{"type": "f", "a": 5}])))
    """)
    assert result.stdout.splitlines() == ["$lt 1", "$gte 1", "$eq 1", "$neq 1", "guarded 0"]


def test_arithmetic_on_two_constants_is_mis_evaluated():
    result = run("""
        minus = {"$sub": {"$l": 15, "$r": 3}}
        name = register({"r": {"all": [{"m": {"$and": [G, {"$gte": {"j": minus}}]}}],
                               "run": "r"}})
        print(len(fired(name, [{"j": 12}, {"j": 20}])))
        folded = register({"r": {"all": [{"m": {"$and": [G, {"$gte": {"j": 12}}]}}], "run": "r"}})
        print(len(fired(folded, [{"j": 12}, {"j": 20}])))
    """)
    assert result.stdout.split() == ["0", "2"]


def test_cross_fact_ordering_comparison_crashes_the_library_default_host():
    """durable-rules #381, reproduced with the issue's own script (the library's default,
    threaded host): the validator refuses this construct."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        from durable.lang import ruleset, when_all, c, m, post
        with ruleset('metrics'):
            @when_all(c.first << (m.metric == 'met-A') & (m.amount > 10),
                      c.second << (m.metric == 'met-B') & (m.amount > c.first.amount))
            def detected(c):
                pass
            @when_all(c.first << (m.metric == 'met-A') & (m.amount > 50),
                      c.second << (m.metric == 'met-B') & (m.amount < c.first.amount))
            def detected2(c):
                pass
        post('metrics', {'metric': 'met-A', 'amount': 100})
        post('metrics', {'metric': 'met-B', 'amount': 200})
        print("survived")
    """)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == -signal.SIGSEGV, (result.returncode, result.stdout)
