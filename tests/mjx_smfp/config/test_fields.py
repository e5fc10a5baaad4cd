"""Reflection over the config dataclasses (mjx_smfp/config/fields.py): command-line strings read as
their field's type, nested configs' fields are flat names routed back into them, and a name declared
twice is refused."""
import dataclasses
from typing import Optional

import pytest

from mjx_smfp.config import fields


@pytest.mark.parametrize("text, typ, value", [
    ("1e6", int, 1_000_000), ("12", int, 12), ("3e-4", float, 3e-4), ("off", bool, False), ("Yes", bool, True),
    ("64,64", tuple[int, ...], (64, 64)), ("(1, 2)", tuple[int, ...], (1, 2)), ("none", Optional[float], None),
    ("0.5", Optional[float], 0.5), ("silu", str, "silu"),
])
def test_command_line_strings_read_as_their_fields_type(text, typ, value):
    assert fields.parse_value("x", text, typ) == value and type(fields.parse_value("x", text, typ)) is type(value)


def test_an_unreadable_value_names_the_option_and_the_type():
    with pytest.raises(ValueError, match=r"--normalize_obs: cannot read 'maybe' as bool"):
        fields.parse_value("normalize_obs", "maybe", bool)


@dataclasses.dataclass(frozen=True)
class Inner:
    width: int = 4
    mode: str = "a"


@dataclasses.dataclass(frozen=True)
class Outer:
    lr: float = 0.1
    inner: Inner = Inner()


def test_nested_fields_are_flat_names_routed_back_into_their_config():
    assert fields.nested_configs(Outer) == {"inner": Inner}
    assert fields.flat_field_types(Outer) == {"lr": float, "width": int, "mode": str}
    assert fields.make_config(Outer, {"lr": 0.2, "mode": "b"}) == Outer(lr=0.2, inner=Inner(mode="b"))
    # from JSON the nested config comes as a dict; flat values win over it
    assert fields.make_config(Outer, {"inner": {"width": 8, "mode": "c"}, "mode": "d"}) == Outer(inner=Inner(8, "d"))
    assert fields.default(Outer, "lr") == 0.1


def test_a_field_declared_in_a_config_and_its_nested_config_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Clash:
        width: int = 1
        inner: Inner = Inner()

    with pytest.raises(TypeError, match=r"field 'width' is declared twice"):
        fields.flat_field_types(Clash)
