# Shared by the shell test scripts, sourced after they cd to the repository root: the gmc
# under test, a temporary directory removed on exit, and the TAP-like result lines that
# tests/run.sh counts.
GMC=${GMC:-./gmc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; }
expect() { if eval "$2"; then ok "$1"; else fail "$1"; fi; }
