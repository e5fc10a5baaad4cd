"""The house rules of the code layout (issue 36), read from the source with `ast`: no module over 350
lines in mjx_smfp/, envs/, launch/; no function over 80 lines outside tests/; no upward import (a
module never imports a subpackage that contains it, e.g. a room of mjx_smfp/config/ the config
package, and the top-level folders import only downward: envs < mjx_smfp < launch < benchmarks,
none of them tests/); tests/mjx_smfp/ mirrors mjx_smfp/."""
import ast
import os


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("envs", "mjx_smfp", "launch", "benchmarks")  # each may import only those before it
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 350, 80


def _modules(*folders):
    """(path relative to ROOT, dotted module name) of every .py file under `folders`."""
    for folder in folders:
        for directory, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.relpath(os.path.join(directory, name), ROOT)
                    dotted = path[:-3].replace(os.sep, ".")
                    yield path, dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted


def _tree(path):
    with open(os.path.join(ROOT, path)) as f:
        return ast.parse(f.read())


def _is_module(dotted):
    base = os.path.join(ROOT, *dotted.split("."))
    return os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__init__.py"))


def _imports(tree, dotted, is_package=False):
    """Every module the module `dotted` (parsed: `tree`) imports, function-level imports too;
    `from pkg import sub` counts as pkg.sub where sub is a module."""
    package = dotted if is_package else dotted.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base


def _upward(dotted, imported):
    """Whether module `dotted` importing `imported` goes up: into a subpackage that contains it (a
    top-level package's own registry, `envs.make`, is its public face, not a room above), into tests,
    or into a later layer."""
    layer = LAYERS.index(dotted.split(".")[0])
    containers = {".".join(dotted.split(".")[:k]) for k in range(2, dotted.count(".") + 1)}
    top = imported.split(".")[0]
    return imported in containers or top == "tests" or (top in LAYERS and LAYERS.index(top) > layer)


def test_no_module_over_350_lines_in_the_library_the_envs_and_launch():
    over = {}
    for path, _ in _modules("mjx_smfp", "envs", "launch"):
        with open(os.path.join(ROOT, path)) as f:
            lines = len(f.read().splitlines())
        if lines > MAX_MODULE_LINES:
            over[path] = lines
    assert over == {}


def test_no_function_over_80_lines_outside_tests():
    over = {}
    for path, _ in _modules(*LAYERS):
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    over[f"{path}:{node.name}"] = length
    assert over == {}


def test_no_upward_import():
    upward = [f"{path} imports {imported}" for path, dotted in _modules(*LAYERS)
              for imported in _imports(_tree(path), dotted, path.endswith("__init__.py")) if _upward(dotted, imported)]
    assert upward == []


def test_the_upward_import_check_sees_function_level_package_relative_and_layer_imports():
    """The check above can fail: inside mjx_smfp/config/, a function-level import of the config package
    itself is upward, a relative import of a sibling room is not; envs importing mjx_smfp is."""
    source = ast.parse("def f():\n    from mjx_smfp.config import build\n    from .fields import parse_value\n"
                       "from mjx_smfp import recipes\n")
    imported = set(_imports(source, "mjx_smfp.config.presets"))
    assert imported == {"mjx_smfp.config", "mjx_smfp.config.fields", "mjx_smfp.recipes"}
    assert [i for i in sorted(imported) if _upward("mjx_smfp.config.presets", i)] == ["mjx_smfp.config"]
    assert _upward("envs.base", "mjx_smfp.networks") and _upward("launch.train", "tests.dummy_envs")
    assert not _upward("launch.train", "mjx_smfp.cli") and not _upward("envs.parity", "envs")


def test_tests_of_the_library_mirror_its_packages():
    def folders(root, keep):
        return {os.path.relpath(d, root) for d, _, files in os.walk(root) if any(map(keep, files))}

    library = folders(os.path.join(ROOT, "mjx_smfp"), lambda f: f == "__init__.py")
    mirrored = folders(os.path.join(ROOT, "tests", "mjx_smfp"), lambda f: f.startswith("test_") and f.endswith(".py"))
    assert mirrored and mirrored <= library
    own = [f for f in os.listdir(os.path.join(ROOT, "tests")) if f.startswith("test_") and f.endswith(".py")]
    assert own == ["test_layout.py"]  # every other test sits in the folder of what it tests
