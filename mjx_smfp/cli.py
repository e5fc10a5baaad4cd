"""The command line of every entry point: `--field value` pairs (`parse_cli_pairs`), a training
command line read in one walk (`parse_command_line`: the overrides plus `--help`, `--resume` and
`--allow_cpu_fast`) and the `--help` text (`help_text`), generated from the config dataclasses in
mjx_smfp/config/.

The command line is this module's small flat parser, not tyro: tyro is not among the pinned
dependencies, and its nested `--policy.sigma-mode` options would break the flat
`--field value` syntax that runs, presets, `config.json` and scripts already use. `--help`
lists each field's type, its default resolved for the chosen env/agent/preset, and its
meaning, read from the inline `# comment` beside the field (`field_comments`), so the help
cannot drift from the code. Values are read as their field's type by `config.parse_value`
when `config.build` resolves them.
"""
from __future__ import annotations

import dataclasses
import inspect
import io
import textwrap
import tokenize
import typing
from typing import Any, Optional

from mjx_smfp import config

HELP_FLAGS = ("-h", "--help")


def parse_cli_pairs(argv: list[str]) -> dict[str, str]:
    """['--a', '1', '--b=2', '--flag'] -> {'a': '1', 'b': '2', 'flag': 'true'}."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        tok = argv[i]
        if not tok.startswith("--"):
            raise ValueError(f"unexpected argument {tok!r}; options are --field value")
        key = tok[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value = argv[i + 1]
            i += 2
        else:
            value = "true"
            i += 1
        out[key.replace("-", "_")] = value
    return out


@dataclasses.dataclass(frozen=True)
class CommandLine:
    """A training command line, read once: the config overrides and launch.train's own options."""

    overrides: dict[str, str]  # --field value pairs: config.build's overrides (on resume, the allowed changes)
    help: bool = False  # -h / --help: print every option instead of training
    resume: Optional[str] = None  # --resume RUN_DIR: continue that run with its saved config
    allow_cpu_fast: bool = False  # --allow_cpu_fast true: run the GPU-sized fast preset on a CPU anyway


def parse_command_line(argv: list[str]) -> CommandLine:
    """One walk of `argv` into a CommandLine; ValueError naming what cannot be read."""
    pairs = parse_cli_pairs([a for a in argv if a not in HELP_FLAGS])
    allow_cpu_fast = config.parse_value("allow_cpu_fast", pairs.pop("allow_cpu_fast", "false"), bool)
    return CommandLine(overrides=pairs, help=any(a in HELP_FLAGS for a in argv), resume=pairs.pop("resume", None),
                       allow_cpu_fast=allow_cpu_fast)


def _own_field_comments(cls) -> dict[str, str]:
    """{field: inline comment} of the fields `cls` itself declares (`name: type = x  # comment`)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (e.g. a frozen install): no meanings
        return {}
    out, depth, line = {}, 0, []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type == tokenize.NL and all(t.type == tokenize.COMMENT for t in line):
            line = []  # a comment-only line belongs to no field
        elif tok.type == tokenize.NEWLINE:
            if depth == 1 and len(line) > 1 and line[0].type == tokenize.NAME and line[1].string == ":":
                comments = [t for t in line if t.type == tokenize.COMMENT and t.start[0] == line[0].start[0]]
                out[line[0].string] = comments[0].string.lstrip("#").strip() if comments else ""
            line = []
        elif tok.type != tokenize.NL:
            line.append(tok)
    fields = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in out.items() if k in fields}


def field_comments(cls) -> dict[str, str]:
    """The meaning of every field of config class `cls` by its command-line name, from the
    inline comments in its source (a subclass's comment wins); nested configs included."""
    out: dict[str, str] = {}
    for klass in [*reversed(cls.__mro__), *config.nested_configs(cls).values()]:
        if dataclasses.is_dataclass(klass):
            out.update(_own_field_comments(klass))
    return out


def _type_name(typ: Any) -> str:
    args = [a for a in typing.get_args(typ) if a is not type(None) and a is not Ellipsis]
    if typing.get_origin(typ) is tuple:
        return f"{_type_name(args[0] if args else str)},..."
    if len(args) < len(typing.get_args(typ)) and args:  # Optional[X]
        return f"{_type_name(args[0])}|none"
    return getattr(typ, "__name__", str(typ))


def show_value(value: Any) -> str:
    """A field value as the command line writes it: `64,64`, `none`, `true`, `''`."""
    if value == "":
        return "''"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return str(value)


TASK_FIELDS = ("env", "env_kwargs", "episode_length")


def help_text(overrides: dict[str, Any]) -> str:
    """Every option of the run `overrides` chose (only `env`, `agent`, `preset` are read),
    grouped loop / agent / task: type, default after presets, meaning; plus the valid envs,
    agents and presets."""
    import envs
    from mjx_smfp import agents

    chosen = {k: v for k, v in overrides.items() if k in ("env", "agent", "preset")}
    cfg, agent_cfg = config.build(chosen)
    agent_cls = agents.get_class(cfg.agent).Config
    train_meaning, agent_meaning = field_comments(config.TrainConfig), field_comments(agent_cls)
    train_values = dataclasses.asdict(cfg)
    nested = config.nested_configs(agent_cls)
    agent_values = {k: getattr(agent_cfg, k) for k in config.field_types(type(agent_cfg)) if k not in nested}
    for nested_name in nested:
        agent_values.update(dataclasses.asdict(getattr(agent_cfg, nested_name)))

    def rows(names, types, values, meanings):
        return [f"  --{n:<22} {_type_name(types[n]):<10} {show_value(values[n]):<16} {meanings.get(n, '')}" for n in names]

    train_types, agent_types = config.field_types(config.TrainConfig), config.flat_field_types(agent_cls)
    own_agent = set(config.field_types(agent_cls)) - set(nested)
    loop = [n for n in train_types if n not in TASK_FIELDS and n != "agent"]
    task_cls = envs.get_class(cfg.env)
    task_options = ", ".join(f"{p.name}={p.default!r}" for p in inspect.signature(task_cls.__init__).parameters.values()
                             if p.name != "self" and p.default is not inspect.Parameter.empty)
    auto = "cpu" if config.resolve_scale("auto") == "cpu" else "fast"
    return "\n".join([
        f"envs: {', '.join(envs.names())}",
        f"agents: {', '.join(agents.names())}",
        f"presets: {', '.join(config.SCALES)} (auto = cpu without an accelerator, else fast; here: {auto})",
        f"Defaults below are for --agent {cfg.agent} --env {cfg.env} --preset {overrides.get('preset', 'auto')}"
        f" (dataclass < scale preset < task preset < command line); pass those to see others.",
        "", f"  {'--option':<24} {'type':<10} {'default':<16} meaning",
        "loop (TrainConfig):", *rows(loop, train_types, train_values, train_meaning),
        "", f"agent ({agent_cls.__qualname__}):", *rows(["agent"], train_types, train_values, train_meaning),
        *rows([n for n in agent_types if n in own_agent], agent_types, agent_values, agent_meaning),
        *[line for name, typ in nested.items() for line in (
            f" {name} ({typ.__qualname__}): {agent_meaning.get(name, '')}",
            *rows(list(config.field_types(typ)), agent_types, agent_values, agent_meaning))],
        "", "task:", *rows(TASK_FIELDS, train_types, train_values, train_meaning),
        f"  {cfg.env} options for --env_kwargs: {task_options or 'none'}",
    ])
