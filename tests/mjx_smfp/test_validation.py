"""validation.check: every rule passes what it should and names the field and value when it fails."""
import dataclasses

import pytest

from mjx_smfp.validation import check


@dataclasses.dataclass(frozen=True)
class Fields:
    lr: float = 3e-4
    count: int = 2
    tau: float = 1.0
    mode: str = "a"
    std: object = None


@pytest.mark.parametrize("kwargs", [
    dict(positive=True), dict(nonneg=True), dict(finite=True), dict(at_least=1e-4), dict(within="(0, 1]"),
])
def test_a_good_value_passes_every_rule(kwargs):
    check(Fields(), "lr", **kwargs)


@pytest.mark.parametrize("source, names, rules, message", [
    (Fields(lr=float("nan")), ("lr",), dict(positive=True), r"^lr=nan must be finite and > 0$"),
    (Fields(lr=float("inf")), ("lr",), dict(positive=True), r"^lr=inf must be finite and > 0$"),
    (Fields(lr=0.0), ("lr",), dict(positive=True), r"^lr=0.0 must be finite and > 0$"),
    (Fields(lr=-1e-3), ("lr",), dict(nonneg=True), r"^lr=-0.001 must be finite and >= 0$"),
    (Fields(count=0), ("lr", "count"), dict(positive=True), r"^count=0 must be positive$"),  # the first bad one
    (Fields(count=-1), ("count",), dict(nonneg=True), r"^count=-1 must be >= 0$"),
    (Fields(count=0), ("count",), dict(at_least=1), r"^count=0 must be >= 1$"),
    (Fields(lr=float("nan")), ("lr",), dict(finite=True), r"^lr=nan must be finite$"),
    (Fields(tau=0.0), ("tau",), dict(within="(0, 1]"), r"^tau=0.0 must be in \(0, 1\]$"),
    (Fields(tau=1.0), ("tau",), dict(within="[0, 1)"), r"^tau=1.0 must be in \[0, 1\)$"),
    (Fields(tau=float("nan")), ("tau",), dict(within="[0, 1]"), r"^tau=nan must be in \[0, 1\]$"),
    (Fields(mode="c"), ("mode",), dict(choices=("a", "b")), r"^mode='c' is not valid; choose one of a, b$"),
    (Fields(mode="c"), ("mode",), dict(choices=("a", "b"), noun="modes"), r"^mode='c' is not valid; valid modes: a, b$"),
    ("num_seeds", (0,), dict(positive=True), r"^num_seeds=0 must be positive$"),
])
def test_a_bad_value_raises_naming_the_field_and_value(source, names, rules, message):
    with pytest.raises(ValueError, match=message):
        check(source, *names, **rules)


def test_interval_ends_are_open_or_closed_as_written():
    for within, good, bad in (("[0, 1]", (0.0, 1.0), (-1e-9, 1.000001)), ("(0, 1)", (1e-9, 0.999), (0.0, 1.0))):
        for value in good:
            check("x", value, within=within)
        for value in bad:
            with pytest.raises(ValueError):
                check("x", value, within=within)


def test_optional_lets_none_pass_and_only_then():
    check(Fields(), "std", positive=True, optional=True)
    with pytest.raises(TypeError):
        check(Fields(), "std", positive=True)
