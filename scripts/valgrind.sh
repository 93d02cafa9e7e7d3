#!/usr/bin/env bash
# valgrind memcheck on a sample run of the engine (the tree's ordinary -O2 build).
#
#   scripts/valgrind.sh [N]        # ~30 s: valgrind runs Python ~30x slower (N iterations, default 12)
#   scripts/valgrind.sh --leak 7   # self-check: a deliberate leak must make it fail
#
# Runs scripts/leak_loop.py (create/run/destroy through every exit path, including a
# bundled experiment end to end) under memcheck with full leak checking, then reads the
# report: it fails on any "definitely lost" bytes whose stack passes through vemu, and on
# any invalid read/write, conditional jump on uninitialised memory or bad free whose stack
# passes through vemu.c. CPython's own allocator confuses memcheck (PYTHONMALLOC=malloc
# avoids the worst of it) and leaves "possibly lost" blocks at exit; those are not ours.
#
# The exact command it runs:
#   PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
#       --errors-for-leak-kinds=definite --track-origins=yes --num-callers=40 \
#       --log-file=LOG python3 scripts/leak_loop.py 12
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$(python3 -c 'import sys; print(sys.executable)')"
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)" >&2; exit 2; }
LOG="$(mktemp "${TMPDIR:-/tmp}/vemu-valgrind.XXXXXX.log")"
cd "$ROOT"
[ $# -gt 0 ] || set -- 12
PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --track-origins=yes --num-callers=40 \
    --log-file="$LOG" "$PY" scripts/leak_loop.py "$@" || true  # its own verdict is the heap's; ours is below
echo "valgrind: log in $LOG"
grep -E "definitely lost:|indirectly lost:|ERROR SUMMARY" "$LOG" | sed 's/^==[0-9]*== */valgrind: /'
# blocks of the report (separated by blank lines) that mention vemu
sed 's/^==[0-9]*== \{0,1\}//' "$LOG" |
    awk -v RS= '/(Invalid (read|write|free)|uninitialised|definitely lost in|Mismatched free|overlap)/ && /(vemu_|vemu\.c)/' \
    > "$LOG.vemu"
if [ -s "$LOG.vemu" ]; then
    cat "$LOG.vemu" >&2
    echo "valgrind: memcheck reports errors or definite leaks in vemu (above)" >&2
    exit 1
fi
echo "valgrind: clean: no definite leaks and no invalid reads/writes in vemu"
