"""Reflection over the config dataclasses: each field's type, nested configs and their flat
command-line names, building a config from flat values, and reading a command-line string as a
field's type. Pure functions of the classes; nothing here knows a particular config."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any


def field_types(cls) -> dict[str, Any]:
    """{field name: type} of config dataclass `cls` (its annotations; the default's type as a fallback)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolved forward refs: fall back to defaults' types
        hints = {}
    out = {}
    for f in dataclasses.fields(cls):
        out[f.name] = hints.get(f.name, type(f.default) if f.default is not dataclasses.MISSING else str)
    return out


def nested_configs(cls) -> dict[str, type]:
    """Fields of config class `cls` that are themselves config dataclasses (e.g. SMFP's `policy`)."""
    return {name: typ for name, typ in field_types(cls).items() if dataclasses.is_dataclass(typ)}


def flat_field_types(cls) -> dict[str, Any]:
    """Every settable field of config class `cls` by its command-line name: its own fields and
    those of nested configs (SMFP's `policy.sigma_mode` is `--sigma_mode`)."""
    out = {k: v for k, v in field_types(cls).items() if k not in nested_configs(cls)}
    for typ in nested_configs(cls).values():
        for name, sub in field_types(typ).items():
            if name in out:
                raise TypeError(f"{cls.__qualname__}: field {name!r} is declared twice (nested configs need unique names)")
            out[name] = sub
    return out


def make_config(cls, values: dict):
    """Build `cls` from flat field values, routing nested configs' fields into them."""
    nested = nested_configs(cls)
    own = {k: v for k, v in values.items() if k in field_types(cls) and k not in nested}
    for field_name, typ in nested.items():
        sub = {k: v for k, v in values.items() if k in field_types(typ)}
        if isinstance(values.get(field_name), dict):  # from JSON (config.json)
            sub = {**values[field_name], **sub}
        own[field_name] = typ(**sub)
    return cls(**own)


def parse_value(name: str, text: Any, typ: Any) -> Any:
    """Convert a command-line string to field type `typ` (int, float, bool, str, tuple, Optional)."""
    if not isinstance(text, str):
        return text
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    try:
        if origin is typing.Union or (origin is not None and type(None) in args):
            if text.lower() in ("none", "null", ""):
                return None
            inner = [a for a in args if a is not type(None)][0]
            return parse_value(name, text, inner)
        if typ is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if typ is int:
            return int(float(text)) if "e" in text.lower() else int(text)
        if typ is float:
            return float(text)
        if origin is tuple:
            inner = args[0] if args else str
            parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
            return tuple(parse_value(name, p.strip(), inner) for p in parts)
        return text
    except ValueError:
        raise ValueError(f"--{name}: cannot read {text!r} as {getattr(typ, '__name__', typ)}") from None


def default(cls, name: str):
    """The declared default of field `name` of config class `cls`."""
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)
