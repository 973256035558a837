"""minifm.profiler: where the time and memory of a model go (torch.profiler's API).

    with profile() as prof:
        with record_function("train_step"):
            loss = model(x).sum()
            loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")     # open in https://ui.perfetto.dev

- profile.py       the recorder: a FunctionHook that times every op's forward (named after
                   its Function, "Mul") and backward (named after its node, "MulBackward0"),
                   and `record_function` for ranges of your own; a chrome trace of them all
- key_averages.py  the events grouped by name, and PyTorch's table of them

Nothing is recorded outside a `with profile()` block, and then ops pay nothing for it.
"""
from .key_averages import EventList, FunctionEventAvg
from .profile import Event, ProfilerActivity, profile, record_function

__all__ = ["profile", "record_function", "ProfilerActivity", "Event", "EventList",
           "FunctionEventAvg"]
