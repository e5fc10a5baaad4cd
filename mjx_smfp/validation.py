"""One range check for every config field: `check` raises ValueError("field=value must be ...")
naming the field, so the loop config, the agent configs and the policy configs all speak alike.

    check(cfg, "actor_lr", "critic_lr", positive=True)     # fields of a config object
    check("num_seeds", num_seeds, positive=True)           # one named value
    check(cfg, "tau", within="(0, 1]")                      # an interval, as the message writes it
    check(cfg, "sigma_mode", choices=SIGMA_MODES)

Rules (any combination; checked in this order):
* `choices`: the value is one of them ("is not valid; choose one of a, b", or "valid <noun>: a, b"
  with `noun`);
* `finite`: not nan or +-inf;
* `positive` / `nonneg`: > 0 / >= 0 ("finite and > 0" for floats; integers read "positive");
* `at_least=k`: >= k (counts: `at_least=1`);
* `within="[lo, hi)"`: in the interval, each end open "(" ")" or closed "[" "]", finite numbers.
`optional=True` lets None pass (an unset Optional field). Floats that must be positive, non-negative
or within an interval must also be finite: nan fails every comparison, so it is reported, not passed.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional


def _interval(text: str) -> tuple[float, float, bool, bool]:
    """'(0, 1]' -> (0.0, 1.0, low closed?, high closed?)."""
    text = text.strip()
    if text[0] not in "([" or text[-1] not in ")]" or text.count(",") != 1:
        raise ValueError(f"interval {text!r} must look like '[lo, hi)'")
    lo, hi = (float(x) for x in text[1:-1].split(","))
    return lo, hi, text[0] == "[", text[-1] == "]"


def _problem(value: Any, *, choices: Optional[Iterable] = None, noun: Optional[str] = None, finite: bool = False,
             positive: bool = False, nonneg: bool = False, at_least: Optional[float] = None,
             within: Optional[str] = None) -> Optional[str]:
    """What is wrong with `value` under the rules (the message's tail after 'name=value'), or None."""
    if choices is not None:
        valid = tuple(choices)
        if value not in valid:
            listed = ", ".join(map(str, valid))
            return f"is not valid; valid {noun}: {listed}" if noun else f"is not valid; choose one of {listed}"
        return None
    is_float = isinstance(value, float)
    if finite and not math.isfinite(value):
        return "must be finite"
    if positive and not (math.isfinite(value) and value > 0):
        return "must be finite and > 0" if is_float else "must be positive"
    if nonneg and not (math.isfinite(value) and value >= 0):
        return "must be finite and >= 0" if is_float else "must be >= 0"
    if at_least is not None and not value >= at_least:
        return f"must be >= {at_least}"
    if within is not None:
        lo, hi, lo_closed, hi_closed = _interval(within)
        above = value >= lo if lo_closed else value > lo
        below = value <= hi if hi_closed else value < hi
        if not (above and below):
            return f"must be in {within}"
    return None


def check(source: Any, *names: Any, optional: bool = False, **rules) -> None:
    """Raise ValueError("name=value <what is wrong>") for the first of `names` that breaks `rules`.

    `source` is a config object (each name is read with getattr) or a field name, then followed by
    its value: `check("num_seeds", 0, positive=True)`. Rules: see the module docstring."""
    if isinstance(source, str):
        if len(names) != 1:
            raise TypeError("check(name, value, ...) takes exactly one value")
        pairs = [(source, names[0])]
    else:
        pairs = [(name, getattr(source, name)) for name in names]
    for name, value in pairs:
        if value is None and optional:
            continue
        problem = _problem(value, **rules)
        if problem is not None:
            shown = repr(value) if isinstance(value, str) else value
            raise ValueError(f"{name}={shown} {problem}")
