"""Test-wide settings: CPU only, and a persistent compile cache shared by xdist workers and
by the tests' subprocesses (through the environment), set up by
`mjx_smfp.compile_cache.configure`, which also keeps warm cache loads silent."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".cache", "jax")))

from mjx_smfp import compile_cache  # noqa: E402

compile_cache.configure()
