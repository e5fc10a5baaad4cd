"""Typed, frozen run configuration: `TrainConfig` (the loop) + the agent's own `Config`. The
command line (parsing `--field value` pairs, `--help`) is mjx_smfp/cli.py, built on this package.

Its rooms, each importable on its own (none imports this package):
* `train`: `TrainConfig`, the loop's fields;
* `presets`: scales (`auto`, `cpu`, `fast`, `paper`), task presets and the recipe a run gets;
* `fields`: reflection over the config dataclasses (types, nested configs, flat names, parsing);
* `resolve`: `build` (presets and overrides -> validated configs) and the start-up checks;
* `saved`: the JSON round trip (`to_dict`/`from_dict`) and the migrations of older config.json.

Precedence: dataclass defaults < scale preset < task preset (any scale, then this scale) <
overrides; the shared recipe sits between the scale preset and the task presets. Every field can be
overridden by name; agent fields (e.g. `temperature_lr`) go to the agent's Config, a nested
config's fields (SMFP's `policy.sigma_mode`) by their own flat name. Override values may be strings
(`parse_value` reads them as the field's type). Unknown or inconsistent options raise ValueError
naming the field.
"""
from mjx_smfp.config.fields import field_types, flat_field_types, make_config, nested_configs, parse_value
from mjx_smfp.config.presets import (FAST_SHAPE_ON_CPU, PHYSICS, RECIPE_DEFAULTS, SCALE_PRESETS, SCALES,
                                     TASK_PRESETS, resolve_recipe, resolve_scale)
from mjx_smfp.config.resolve import (build, check_reward_support, check_seeds, check_sharding, recipe_differences,
                                     validate)
from mjx_smfp.config.saved import from_dict, lift_moved_fields, to_dict
from mjx_smfp.config.train import TrainConfig

__all__ = [
    "TrainConfig", "build", "validate", "check_reward_support", "check_seeds", "check_sharding", "recipe_differences",
    "SCALES", "PHYSICS", "SCALE_PRESETS", "FAST_SHAPE_ON_CPU", "TASK_PRESETS", "RECIPE_DEFAULTS", "resolve_scale",
    "resolve_recipe", "field_types", "nested_configs", "flat_field_types", "make_config", "parse_value", "to_dict",
    "from_dict", "lift_moved_fields",
]
