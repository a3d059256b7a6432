#!/usr/bin/env bash
# The `klepto` command's throughput and memory on SQLite -> SQLite:
# `export`, `convert` and `verify` of N entries (default: 10,000 and
# 100,000), each timed with its peak RSS. Targets (issue 13): export and
# convert of 100,000 in under 2 s, verify under 1 s, memory not growing
# with the archive.
#
#   bash benches/cli.sh [N ...]
#
# Builds the release binary (the default release profile, as `cargo
# install` does), writes N entries `k -> [k, k * 2.5, "result k"]` with
# `klepto import`, then runs each command once.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin klepto
klepto="$PWD/target/release/klepto"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs a command (standard output discarded): "<seconds> s, peak RSS <MiB>",
# from GNU time (Debian package `time`).
if [[ ! -x /usr/bin/time ]]; then
  echo "benches/cli.sh needs GNU time: apt-get install time" >&2
  exit 2
fi
measure() {
  /usr/bin/time -f "%e s, peak RSS %M KiB" "$@" 2>&1 > /dev/null | tail -1
}

for n in "${@:-10000 100000}"; do
  for count in $n; do
    # Keys: the MessagePack of k (positive fixint, uint8, uint16, uint32).
    awk -v n="$count" 'BEGIN {
      for (k = 0; k < n; k++) {
        if (k < 128) key = sprintf("%02x", k)
        else if (k < 256) key = sprintf("cc%02x", k)
        else if (k < 65536) key = sprintf("cd%04x", k)
        else key = sprintf("ce%08x", k)
        printf("{\"key\":\"%s\",\"call\":null,\"args\":null,\"value\":[%d,%.1f,\"result %d\"]}\n", key, k, k * 2.5, k)
      }
    }' > "$work/in.jsonl"
    rm -f "$work"/*.db*
    "$klepto" import "$work/in.jsonl" "$work/src.db" --ns t 2> /dev/null
    echo "$count entries ($(du -h "$work/src.db" | cut -f1) SQLite file):"
    echo "  export   $(measure "$klepto" export "$work/src.db" --ns t)"
    echo "  convert  $(measure "$klepto" convert "$work/src.db" "$work/dst.db" --ns t)"
    echo "  verify   $(measure "$klepto" verify "$work/src.db" --ns t)"
  done
done
