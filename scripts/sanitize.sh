#!/usr/bin/env bash
# The C engine under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer).
#
#   scripts/sanitize.sh            # ~2.5 minutes on 2 cores; exit 0 clean, non-zero on any report
#   VEMU_SANITIZE_ARGS="--deselect tests/test_engine.py::NAME" scripts/sanitize.sh   # extra pytest args
#
# How: native/build_native.py is compiled with VEMU_CFLAGS/VEMU_LDFLAGS into a temporary
# directory holding a copy of the emulator package (the tree's own _native*.so is left
# alone), and the real Python interpreter (not a pyenv shim: LD_PRELOAD must not reach a
# shell) runs with libasan preloaded, since Python itself is not built with ASan. Then:
#   1. the engine-level tests (tests/test_fuzz.py, tests/test_engine.py if present) with
#      detect_leaks=0: CPython's own allocations at exit are not ours;
#   2. scripts/leak_loop.py (create/run/destroy through every exit path) with
#      detect_leaks=1: a leak report counts only if its stack passes through vemu code,
#      and the heap must not grow across the loop;
#   3. a self-check that a deliberate leak IS reported (so step 2 cannot pass vacuously);
# and, compiled on their own, native/invariants.c under ASan+UBSan and native/threads.c
# (first use from several threads at once) under ThreadSanitizer.
# Any ASan or UBSan report aborts the process (halt_on_error, -fno-sanitize-recover).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$(python3 -c 'import sys; print(sys.executable)')"
LIBASAN="$(gcc -print-file-name=libasan.so)"
[ -f "$LIBASAN" ] || { echo "sanitize: libasan not found (gcc -print-file-name=libasan.so)" >&2; exit 2; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vemu-asan.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "sanitize: building the engine with -fsanitize=address,undefined into $WORK"
cp -r "$ROOT/emulator" "$WORK/emulator"
rm -rf "$WORK"/emulator/_native*.so "$WORK"/emulator/__pycache__ "$WORK"/emulator/*/__pycache__
ln -s "$ROOT/models" "$WORK/models"
export VEMU_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g"
export VEMU_LDFLAGS="-fsanitize=address,undefined"
(cd "$WORK" && "$PY" - "$ROOT/native" <<'EOF'
import glob, shutil, sys
sys.path.insert(0, sys.argv[1])
import build_native
so = build_native.ffibuilder.compile(tmpdir="build", verbose=False)
shutil.copy(so, "emulator/")
EOF
)
unset VEMU_CFLAGS VEMU_LDFLAGS

# Run from $WORK so that `emulator` is its copy (python -m puts the cwd first on sys.path).
asan() { (cd "$WORK" && LD_PRELOAD="$LIBASAN" PYTHONDONTWRITEBYTECODE=1 "$@"); }
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
BASE="halt_on_error=1:abort_on_error=0:exitcode=86:strict_string_checks=1:check_initialization_order=1"
BASE="$BASE:detect_stack_use_after_return=1:malloc_context_size=30:fast_unwind_on_malloc=0"

ASAN_OPTIONS="$BASE:detect_leaks=0" asan "$PY" -c 'import emulator._native as n, sys; assert n.__file__.startswith(sys.argv[1]), n.__file__; print("sanitize: using", n.__file__)' "$WORK"

TESTS=("$ROOT/tests/test_fuzz.py")
[ -f "$ROOT/tests/test_engine.py" ] && TESTS+=("$ROOT/tests/test_engine.py")
[ -f "$ROOT/tests/test_throttle.py" ] && TESTS+=("$ROOT/tests/test_throttle.py")
[ -f "$ROOT/tests/test_idle.py" ] && TESTS+=("$ROOT/tests/test_idle.py")
[ -f "$ROOT/tests/test_preempt.py" ] && TESTS+=("$ROOT/tests/test_preempt.py")
[ -f "$ROOT/tests/test_lanes.py" ] && TESTS+=("$ROOT/tests/test_lanes.py")
[ -f "$ROOT/tests/test_handover.py" ] && TESTS+=("$ROOT/tests/test_handover.py")
[ -f "$ROOT/tests/test_paging.py" ] && TESTS+=("$ROOT/tests/test_paging.py")
echo "sanitize: pytest ${TESTS[*]##*/} under ASan+UBSan"
ASAN_OPTIONS="$BASE:detect_leaks=0" HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}" VEMU_FUZZ_EXAMPLES="${VEMU_FUZZ_EXAMPLES:-100}" \
    asan "$PY" -m pytest -q -p no:cacheprovider -m "not slow" -x "${TESTS[@]}" ${VEMU_SANITIZE_ARGS:-}

echo "sanitize: white-box invariants (native/invariants.c) under ASan+UBSan"
gcc -std=c11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
    -I"$ROOT/native" "$ROOT/native/invariants.c" -lm -o "$WORK/invariants"
ASAN_OPTIONS="$BASE:detect_leaks=1" "$WORK/invariants" 1500
gcc -std=c11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
    -DUMAX=8 -DQX=5 -DPR=5 -DGP=2 -DPP=2 -I"$ROOT/native" "$ROOT/native/invariants.c" -lm -o "$WORK/invariants-wide"
ASAN_OPTIONS="$BASE:detect_leaks=1" "$WORK/invariants-wide" 1000

echo "sanitize: first use from several threads (native/threads.c) under ThreadSanitizer"
gcc -std=c11 -O1 -g -fsanitize=thread -I"$ROOT/native" "$ROOT/native/threads.c" -lm -o "$WORK/threads"
TSAN_OPTIONS="halt_on_error=1:exitcode=66" "$WORK/threads"

# Leak reports whose stack passes through vemu code (CPython's own leaks at exit are not ours).
vemu_leaks() { awk '/leak of/ {blk = $0; inblk = 1; next} inblk && /^ *#/ {blk = blk "\n" $0; if ($0 ~ /vemu/) hit = 1; next}
                    inblk {if (hit) {print blk; n++} inblk = 0; hit = 0} END {if (hit) {print blk; n++} exit n > 0 ? 1 : 0}' "$@"; }

echo "sanitize: create/run/destroy loop under LeakSanitizer"
# exitcode=0: CPython's own leaks at exit must not fail this step; reports are read from the log below
ASAN_OPTIONS="$BASE:detect_leaks=1:exitcode=0:log_path=$WORK/lsan" asan "$PY" "$ROOT/scripts/leak_loop.py" 150 || {
    echo "sanitize: the leak loop failed (heap grew, or a sanitizer report in $WORK/lsan.*):" >&2
    cat "$WORK"/lsan.* >&2 2>/dev/null || true; exit 1; }
if ! cat "$WORK"/lsan.* 2>/dev/null | vemu_leaks >&2; then
    echo "sanitize: LeakSanitizer reports leaks in vemu (above)" >&2; exit 1
fi
if cat "$WORK"/lsan.* 2>/dev/null | grep -E "ERROR: (AddressSanitizer|UndefinedBehavior)|runtime error:" >&2; then
    echo "sanitize: sanitizer errors in the leak loop (above)" >&2; exit 1
fi

echo "sanitize: self-check: a deliberate leak must be reported"
rm -f "$WORK"/lsan.*
ASAN_OPTIONS="$BASE:detect_leaks=1:exitcode=0:log_path=$WORK/lsan" asan "$PY" "$ROOT/scripts/leak_loop.py" --leak 12 >/dev/null || true
if cat "$WORK"/lsan.* 2>/dev/null | vemu_leaks >/dev/null; then
    echo "sanitize: the leak check did not catch a deliberate leak; it is not working" >&2; exit 1
fi
echo "sanitize: clean (no ASan, UBSan or vemu leak reports)"
