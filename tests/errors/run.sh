#!/bin/sh
# Each .gm file here is a malformed program whose first line says what gmc --check must
# report: "# expect: LINE:COL: message". The check: exit status 1, a diagnostic
# "FILE:LINE:COL: error: ..." containing the message, the quoted source line and a caret.
cd "$(dirname "$0")" || exit 2
GMC=${GMC:-../../gmc}
case $GMC in /*) ;; *) GMC=../../$GMC ;; esac
for f in *.gm; do
    expect=$(sed -n '1s/^# expect: //p' "$f")
    pos=${expect%%: *}
    msg=${expect#*: }
    out=$(timeout 20 "$GMC" "$f" --check 2>&1)
    rc=$?
    line=${pos%%:*}
    src=$(sed -n "${line}p" "$f")
    if [ $rc -ne 1 ]; then
        echo "FAIL - $f: exit status $rc, expected 1; output: $out"
    elif ! printf '%s\n' "$out" | grep -qF "$f:$pos: error: "; then
        echo "FAIL - $f: no diagnostic at $pos; got: $out"
    elif ! printf '%s\n' "$out" | grep -qF -- "$msg"; then
        echo "FAIL - $f: message '$msg' not found; got: $out"
    elif ! printf '%s\n' "$out" | grep -qxF -- "$src" || ! printf '%s\n' "$out" | grep -q '^ *\^'; then
        echo "FAIL - $f: source line or caret missing; got: $out"
    else
        echo "ok - $f: $pos: $msg"
    fi
done
