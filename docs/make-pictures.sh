#!/usr/bin/env bash
# Makes the README's timeline pictures the way a user would: explore the
# default race, write its HTML timeline and its explanation page, and
# screenshot both with headless Chromium (apt-get install chromium).
# Usage: bash docs/make-pictures.sh   (from a checkout; writes docs/*.png)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/wqsim" ./cmd/wqsim
# exit 10 is the bug check the exploration is meant to find
"$work/wqsim" explore cancelsafe:lost-cancel --seed 1 --faildir "$work/fail" >"$work/explore.txt" || [ $? -eq 10 ]
fail=$(sed -n 's/^fail file: //p' "$work/explore.txt")
"$work/wqsim" trace "$fail" --format html -o "$work/race.html"
"$work/wqsim" explain "$fail" --html "$work/explain.html" >/dev/null
shot() { # page, png, height
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --hide-scrollbars --window-size=1450,"$3" \
    --screenshot="$PWD/$2" "file://$1" 2>/dev/null
}
shot "$work/race.html" docs/timeline.png 640
shot "$work/explain.html" docs/explain.png 1150
echo "wrote docs/timeline.png and docs/explain.png"
