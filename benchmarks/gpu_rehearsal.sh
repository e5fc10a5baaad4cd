#!/usr/bin/env bash
# Rehearse the one-shot GPU check (benchmarks/gpu_check.py) on a CPU, in the GPU machine's situation
# (../shared/design/STACK.md, "Rehearsing the GPU machine on a CPU"):
#
#   * a mimic venv of Python 3.12 holding only what that machine's image has that we rely on
#     (jax/jaxlib 0.11.2, flax, optax, orbax-checkpoint, chex, numpy, scipy, pillow, jinja2, click,
#     werkzeug, cloudpickle, matplotlib, ... at constraints/py3.12.txt's versions) — built once,
#     with network, into $MIMIC (default .cache/gpu_rehearsal/venv, ignored by git);
#   * a fresh copy of the checkout (`git clone` of HEAD, or with DIRTY=1 the working tree's
#     tracked and untracked-not-ignored files) plus .wheelhouse/ (`make wheelhouse`), as the
#     device tool sends them;
#   * the documented one-liner, `python3 -m benchmarks.gpu_check --wheelhouse .wheelhouse`, with
#     --smoke, the network cut (`unshare -n`; where that is refused, PIP_NO_INDEX=1 alone) and
#     $OUT set, run once to the end and checked (gpu_check.verify: every planned row, strict
#     JSON, at most 8 files, no *.tmp, the temporary site folder removed, wall time);
#   * the same run again, killed (SIGKILL to its process group) at a random second after the
#     wheels are installed, and checked: every line written before the kill is valid JSON and
#     still there, no *.tmp.
#
#   benchmarks/gpu_rehearsal.sh [RESULT.json]      # default benchmarks/results/gpu_rehearsal.json
#
# Env: PY312 (a Python 3.12 to build the mimic venv), MIMIC, DIRTY=1, KILL_SEED, SMOKE_LIMIT_S (180).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
RESULT=${1:-$REPO/benchmarks/results/gpu_rehearsal.json}
PY312=${PY312:-$(command -v python3.12 || echo /root/.pyenv/versions/3.12.1/bin/python3.12)}
MIMIC=${MIMIC:-$REPO/.cache/gpu_rehearsal/venv}
SMOKE_LIMIT_S=${SMOKE_LIMIT_S:-180}
KILL_SEED=${KILL_SEED:-$RANDOM}
# What the GPU machine's image holds that the project or the carried wheels import (KINDS.md's list).
IMAGE_PKGS="jax jaxlib flax optax orbax-checkpoint chex numpy scipy pillow jinja2 click werkzeug cloudpickle
            matplotlib absl-py etils protobuf typing-extensions packaging pyyaml msgpack imageio rich tqdm"

if [ ! -x "$MIMIC/bin/python3" ]; then
  echo "gpu_rehearsal: building the mimic venv $MIMIC with $PY312 (network, 1-3 min)"
  "$PY312" -m venv "$MIMIC.part"
  pins=$(for p in $IMAGE_PKGS; do grep -i -E "^$(echo "$p" | sed 's/[-_.]/[-_.]/g')==" "$REPO/constraints/py3.12.txt" \
         || echo "$p"; done)
  "$MIMIC.part/bin/python3" -m pip install -q --disable-pip-version-check $pins
  mv "$MIMIC.part" "$MIMIC"  # only a complete venv is reused
fi
[ -d "$REPO/.wheelhouse" ] || make -C "$REPO" wheelhouse

work=$(mktemp -d /tmp/gpu_rehearsal_XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ "${DIRTY:-0}" = 1 ]; then
  mkdir "$work/repo"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$work/repo"
else
  git clone -q "$REPO" "$work/repo"
fi
cp -r "$REPO/.wheelhouse" "$work/repo/.wheelhouse"

if unshare -n true 2>/dev/null; then cut_net="unshare -n"; net="unshare -n (no network)"
else cut_net=""; net="PIP_NO_INDEX=1 only: unshare -n was refused here"; fi
echo "gpu_rehearsal: $(cd "$work/repo" && git rev-parse --short HEAD 2>/dev/null || echo copy); network: $net"

# The GPU machine's situation: the mimic's python3 first on PATH, no PYTHONPATH, no compile cache.
run_check() {  # $1 = OUT folder; runs in the background in its own process group, pid in $pid
  mkdir -p "$1"
  (cd "$work/repo" && exec setsid env -u PYTHONPATH -u JAX_COMPILATION_CACHE_DIR -u JAX_PLATFORMS \
     PATH="$MIMIC/bin:$PATH" PIP_NO_INDEX=1 OUT="$1" TMPDIR="$work/tmp" $cut_net \
     python3 -m benchmarks.gpu_check --wheelhouse .wheelhouse --smoke) >"$1.stdout" 2>&1 &
  pid=$!
}
mkdir -p "$work/tmp"

t0=$(date +%s.%N)
run_check "$work/full"
rc=0; wait $pid || rc=$?
full_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
tail -n 25 "$work/full.stdout"
leftover=$(ls -d "$work"/tmp/gpu_check_* 2>/dev/null || true)  # after the full run (a SIGKILL cannot tidy up)

# Killed at a random second after the install (the install line is printed once the wheels are in).
run_check "$work/killed"
while ! grep -q "installed .* wheels" "$work/killed.stdout" 2>/dev/null; do
  kill -0 $pid 2>/dev/null || break; sleep 0.2; done
kill_after=$("$MIMIC/bin/python3" -c "import random; print(round(random.Random($KILL_SEED).uniform(1, 90), 1))")
sleep "$kill_after"
rows_before=$(cat "$work/killed/rows.jsonl" 2>/dev/null | wc -l)
kill -KILL -- -$pid 2>/dev/null || true
wait $pid 2>/dev/null || true

cd "$REPO"
LEFTOVER="$leftover" "$MIMIC/bin/python3" - "$work" "$rc" "$full_s" "$SMOKE_LIMIT_S" "$kill_after" "$rows_before" "$KILL_SEED" "$net" "$RESULT" <<'EOF'
import datetime, json, os, platform, sys
sys.path.insert(0, ".")
from benchmarks import gpu_check

work, rc, full_s, limit_s, kill_after, rows_before, seed, net, result = sys.argv[1:]
full = gpu_check.verify(os.path.join(work, "full"), complete=True)
killed = gpu_check.verify(os.path.join(work, "killed"), complete=False, at_least_rows=int(rows_before))
leftover_sites = os.environ["LEFTOVER"].split()
problems = full["problems"] + [f"killed run: {p}" for p in killed["problems"]]
if int(rc) != 0:
    problems.append(f"full run exited {rc}")
if float(full_s) > float(limit_s):
    problems.append(f"full run took {float(full_s):.0f} s, over {limit_s} s")
if leftover_sites:
    problems.append(f"temporary folders left behind: {leftover_sites}")
record = dict(date=datetime.date.today().isoformat(), machine=f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", network=net, python=sys.version.split()[0],
              full=dict(rc=int(rc), wall_s=round(float(full_s), 1), rows=full["rows"], files=full["files"],
                        phases=full["phases"]),
              killed=dict(seed=int(seed), kill_after_install_s=float(kill_after), rows_at_kill=int(rows_before),
                          rows=killed["rows"], files=killed["files"], phases=killed["phases"]),
              problems=problems, passed=not problems)
os.makedirs(os.path.dirname(result), exist_ok=True)
with open(result, "w") as f:
    json.dump(record, f, indent=1)
print(f"gpu_rehearsal: {'PASSED' if not problems else 'FAILED'}: full run {float(full_s):.0f} s, "
      f"{full['rows']} rows; killed {kill_after} s after install with {rows_before} rows, {killed['rows']} kept"
      + "".join(f"\n  - {p}" for p in problems) + f"\n  -> {result}")
sys.exit(1 if problems else 0)
EOF
