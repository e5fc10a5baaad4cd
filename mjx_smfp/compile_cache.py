"""JAX's persistent compilation cache, set up so that warm runs load silently.

Why the XLA:CPU instruction set is capped at AVX2: on hosts with AVX-512, XLA:CPU (jaxlib
0.9.x) appends the LLVM *tuning* attributes `+prefer-no-gather,+prefer-no-scatter` to the
target features of every CPU executable (`IrCompiler::build_target_machine`: gather/scatter
are slow there). Those attributes are stored with each cached executable, and the loader
(`cpu_aot_loader.cc`) checks every stored `+feature` against the host's CPUID features,
which never list tuning attributes. So every cache load on the very machine that wrote the
entry logs two multi-kilobyte ERROR lines ("... could lead to SIGILL"); the executable is
still loaded and correct (openxla/xla#44565, jax-ml/jax#38445; newer XLA skips `prefer-*`).
With `--xla_cpu_max_isa=AVX2`, XLA emits no AVX-512 code, adds no tuning attributes, and the
check passes. Cost, on the shared 2-core AMD Zen 4 CPU machines: an MLP-training scan and an
elementwise scan, four interleaved runs each, showed no difference beyond the machines'
run-to-run noise (about 30 %), while a warm cache more than halves a short training run
(inverted pendulum, 3K steps: 239 s cold, 99 s warm). The cap is applied whether or not the
cache is on, so a run's numerics do not depend on it; a user's own `--xla_cpu_max_isa` in
XLA_FLAGS is kept. jaxlib 0.11.2 (the locked set, the GPU machine's) no longer logs these lines
(checked on this machine), so the cap is applied only to jaxlib older than `LOADER_FIXED_IN`.

Why YNNPACK fusion is off on the CPU (`NO_YNN_FUSION`): jaxlib 0.11 fuses chains of dots,
elementwise ops and reductions into YNNPACK graphs by default. On the 2-core CPU machines raw MJX
HalfCheetah stepping (256 envs) ran 2.2x faster without them (3,028 vs 1,395 env-steps/s), and
the `reduce` kind runs an MLP whose head has 3-8 outputs (SMFP's flow on HalfCheetah: |A| = 6)
~1.7x slower than one with 12 (SAC's 2|A|), which had put SMFP's cost per action at 1.6x SAC's
instead of 1.1x (benchmarks/results/speed/profile_notes.md). jaxlib 0.9.2 knows the flag
too. A user's own `--xla_cpu_experimental_ynn_fusion_type` in XLA_FLAGS is kept; GPUs ignore it.
"""
from __future__ import annotations

import os
import warnings

CPU_ISA_FLAG = "--xla_cpu_max_isa=AVX2"
LOADER_FIXED_IN = (0, 11)  # the first jaxlib minor seen loading cached CPU executables silently
NO_YNN_FUSION = "--xla_cpu_experimental_ynn_fusion_type="  # empty: no YNNPACK fusions (module docstring)


def loader_flags_tuning_attributes() -> bool:
    """True for the jaxlib versions whose cpu_aot_loader logs the tuning attributes as errors."""
    from importlib.metadata import version

    return tuple(int(p) for p in version("jaxlib").split(".")[:2]) < LOADER_FIXED_IN


def configure(cache_dir: str | None = None) -> str | None:
    """Turn YNNPACK fusion off and cap XLA:CPU at AVX2 where jaxlib needs it (the module docstring
    says why), and turn on the persistent compilation cache in `cache_dir` (default:
    $JAX_COMPILATION_CACHE_DIR; neither set: no cache), caching every program however small or
    quick to compile. Call it before the first JAX computation: XLA reads XLA_FLAGS once, when
    the backend starts. Returns the cache directory in use, or None."""
    flags = os.environ.get("XLA_FLAGS", "")
    wanted = [NO_YNN_FUSION] if "--xla_cpu_experimental_ynn_fusion_type" not in flags else []
    if "--xla_cpu_max_isa" not in flags and loader_flags_tuning_attributes():
        wanted.append(CPU_ISA_FLAG)
    if wanted:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            warnings.warn(f"compile_cache.configure() called after JAX started its backends: {' '.join(wanted)} "
                          "not in effect (cached CPU executables may log cpu_aot_loader errors; narrow "
                          "dots run in slow YNNPACK fusions)", stacklevel=2)
        os.environ["XLA_FLAGS"] = " ".join([flags] + wanted).strip()
    import jax

    cache_dir = cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if cache_dir:
        jax.config.update("jax_compilation_cache_dir", os.path.abspath(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return cache_dir
