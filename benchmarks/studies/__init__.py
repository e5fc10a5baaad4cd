"""Every study of the benchmarks, as data (benchmarks/harness/spec.py `Study`); each writes to
benchmarks/results/<name>/. Add a study: a spec in a module here (head_to_head.py is a complete one)
and one entry below; `python -m benchmarks.harness run <name>` then trains, records, resumes and
reports it."""
from __future__ import annotations

import os

from benchmarks.studies import entropy_control, head_to_head, paper, parallel_regime, wallclock

STUDIES = {s.name: s for s in (paper.CPU, paper.LEVEL, paper.AB, parallel_regime.CPU, parallel_regime.GPU,
                               wallclock.BANDIT, wallclock.BANDIT_DEFAULTS, wallclock.MUJOCO,
                               wallclock.AGENTS, head_to_head.HEAD_TO_HEAD, head_to_head.CONTEXT,
                               entropy_control.ENTROPY_CONTROL)}
RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")


def get(name: str):
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    return STUDIES[name]


def default_out(name: str) -> str:
    return os.path.join(RESULTS, name)


def describe(name: str | None = None) -> str:
    """The studies, one line each; or one study's runs, variants and schedule."""
    if name is None:
        return "\n".join(f"{s.name}: {s.doc.strip().splitlines()[0]}" for s in STUDIES.values())
    s = get(name)
    variants = "\n".join(f"  {v or '(one variant)'}: {over if isinstance(over, dict) else '(per agent)'}"
                         for v, over in s.variants.items())
    return (f"{s.doc.strip()}\n\ntasks {', '.join(s.tasks)}; agents {', '.join(s.agents)}; {s.seeds} seeds; "
            f"budget {s.budget or 'the config total_env_steps'}\nvariants:\n{variants}")
