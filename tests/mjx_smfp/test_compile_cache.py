"""A warm persistent compile cache loads silently and is really used.

Each check runs a tiny jitted program twice in fresh subprocesses sharing one cache
directory (XLA reads XLA_FLAGS once per process, and this pytest process has already set
them through tests/conftest.py, so the subprocesses get XLA_FLAGS without the ISA cap).
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROGRAM = """
import json, sys
from mjx_smfp import compile_cache
if sys.argv[2] == "configure":
    compile_cache.configure(sys.argv[1])
else:  # the cache alone, as the Makefile's JAX_COMPILATION_CACHE_DIR gave it before
    import jax
    jax.config.update("jax_compilation_cache_dir", sys.argv[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
import jax, jax.numpy as jnp
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
y = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.arange(16.0).reshape(4, 4))
print(json.dumps({"hits": events.count("/jax/compilation_cache/cache_hits"), "value": float(y)}))
"""


def run_twice(cache_dir, mode):
    """(stderr, parsed stdout) of the second of two runs of PROGRAM on one cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "TF_CPP_MIN_LOG_LEVEL")}
    env["JAX_PLATFORMS"] = "cpu"
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", PROGRAM, str(cache_dir), mode], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
    return out.stderr, json.loads(out.stdout.strip().splitlines()[-1])


def host_has_avx512():
    with open("/proc/cpuinfo") as f:
        return " avx512f" in f.read()


def test_warm_cache_hits_without_cpu_aot_loader_errors(tmp_path):
    stderr, report = run_twice(tmp_path / "cache", "configure")
    assert "cpu_aot_loader" not in stderr, stderr[:2000]
    assert not any(line.startswith("E") for line in stderr.splitlines()), stderr[:2000]
    assert report["hits"] >= 1  # the second process loaded its program from the cache
    assert report["value"] > 0


def test_without_the_isa_cap_an_avx512_host_logs_the_errors_on_the_affected_jaxlib(tmp_path):
    """The control: shows the test above can see the lines where they occur (AVX-512 host, a
    jaxlib before the loader fix), and that configure() leaves the ISA alone where the fix is in."""
    from mjx_smfp import compile_cache

    stderr, report = run_twice(tmp_path / "cache", "cache_only")
    assert report["hits"] >= 1  # loaded all the same: the ERROR lines are noise, not a rejection
    affected = host_has_avx512() and compile_cache.loader_flags_tuning_attributes()
    assert ("cpu_aot_loader" in stderr) == affected, stderr[:2000]


def flags_after_configure(xla_flags):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", **({"XLA_FLAGS": xla_flags} if xla_flags is not None else {}))
    program = "import os; from mjx_smfp import compile_cache; compile_cache.configure(); print(os.environ['XLA_FLAGS'])"
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split()


def test_configure_turns_ynnpack_fusion_off_unless_the_user_chose():
    """YNNPACK fusion runs narrow-output dots ~1.8x slower (compile_cache docstring); a user's
    own setting of the flag, and their other flags, are kept."""
    from mjx_smfp.compile_cache import NO_YNN_FUSION

    assert NO_YNN_FUSION in flags_after_configure(None)
    mine = "--xla_cpu_experimental_ynn_fusion_type=kDot"
    kept = flags_after_configure(f"{mine} --xla_force_host_platform_device_count=2")
    assert mine in kept and NO_YNN_FUSION not in kept and "--xla_force_host_platform_device_count=2" in kept
