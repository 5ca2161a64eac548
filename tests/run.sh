#!/bin/sh
# The test runner of `make test`: C unit tests (tests/unit), command-line tests
# (tests/cli.sh), language constructs against numpy (tests/lang), fusion of each op class and
# the dump flags (tests/fusion), the tutorial's programs and
# commands (tests/tutorial.sh), diagnostics of malformed
# programs (tests/errors), PyTorch cross-checks (tests/torch). Every check prints one line "ok - ...", "FAIL - ..." or "skip - ...";
# the last line is the total: "N passed, N failed, N skipped".
cd "$(dirname "$0")/.." || exit 2
GMC=${GMC:-./gmc}
UNIT_DIR=${UNIT_DIR:-build/tests}
export GMC
log=$(mktemp)
# gmc's kernel cache on disk: a fresh one per test run, so runs start cold and
# ~/.cache/gmc is left alone
XDG_CACHE_HOME=$(mktemp -d)
export XDG_CACHE_HOME
trap 'rm -f "$log"; rm -rf "$XDG_CACHE_HOME"' EXIT

run() {  # run a test program; its check lines go to the log; a crash is a failure
    name=$1; shift
    echo "== $name"
    "$@" > "$log.out" 2>&1
    rc=$?
    cat "$log.out"; cat "$log.out" >> "$log"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL - ' "$log.out"; then
        echo "FAIL - $name exited with status $rc" | tee -a "$log"
    fi
}

for t in "$UNIT_DIR"/test_*; do
    [ -x "$t" ] && run "$(basename "$t")" "$t"
done
run errors sh tests/errors/run.sh
run cli sh tests/cli.sh
run stdlib sh tests/stdlib.sh
run seeds sh tests/seeds.sh
run lang sh tests/lang/run.sh
run fusion sh tests/fusion/run.sh
run tutorial sh tests/tutorial.sh
run torch sh tests/torch/run.sh
run bench sh tests/bench.sh

pass=$(grep -c '^ok - ' "$log")
fail=$(grep -c '^FAIL - ' "$log")
skip=$(grep -c '^skip - ' "$log")
echo
grep '^FAIL - ' "$log"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
