"""The profiler: one event per op run (forward by Function name, backward by node name), self
vs total time for nested ranges, bytes made, PyTorch's table sorted as asked, a chrome
trace that is valid JSON, and nothing left hooked afterwards."""
from __future__ import annotations

import json

import minifm
from minifm.autograd import function_hooks
from minifm.profiler import ProfilerActivity, profile, record_function


def step():
    x = minifm.ones(3, 4, requires_grad=True)
    with record_function("step"):
        with record_function("forward"):
            y = (x * x).exp() * 2.0
            loss = y.sum()
        loss.backward()
    return x


def test_counts_match_the_ops_run():
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    counts = {e.key: e.count for e in prof.key_averages()}
    assert counts == {"step": 1, "forward": 1, "Mul": 2, "Exp": 1, "Sum": 1,
                      "SumBackward0": 1, "MulBackward0": 2, "ExpBackward0": 1}
    assert not function_hooks.active


def test_self_time_excludes_children_and_bytes_are_counted():
    with profile() as prof:
        step()
    events = {e.name: e for e in prof.events}
    step_, forward = events["step"], events["forward"]
    assert step_.cpu_time_total >= forward.cpu_time_total > 0
    children = [forward] + [e for e in prof.events if e.category == "backward"]
    expected_self = step_.cpu_time_total - sum(e.cpu_time_total for e in children)
    assert abs(step_.self_cpu_time_total - expected_self) < 1e-6
    assert events["Exp"].cpu_memory_usage == 3 * 4 * 4  # a float32 (3, 4) output
    assert forward.cpu_memory_usage == 2 * 48 + 48 + 4 and forward.self_cpu_memory_usage == 0


def test_table_is_sorted_and_shaped_like_pytorchs():
    with profile() as prof:
        step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=4)
    lines = table.splitlines()
    assert lines[1].split()[:3] == ["Name", "Self", "CPU"] and lines[0] == lines[2]
    rows = lines[3:-2]
    assert len(rows) == 4 and lines[-1].startswith("Self CPU time total:")
    averages = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    assert [r.split()[0] for r in rows] == [e.key for e in averages[:4]]


def test_chrome_trace_is_valid_json(tmp_path):
    with profile() as prof:
        step()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    assert len(events) == len(prof.events)
    assert all(e["ph"] == "X" and e["dur"] >= 0 and {"ts", "pid", "tid", "name"} <= set(e)
               for e in events)
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


def test_record_function_outside_a_profile_does_nothing():
    with record_function("nothing"):
        minifm.ones(2) * 2
    assert not function_hooks.active
