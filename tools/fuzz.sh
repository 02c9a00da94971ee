#!/usr/bin/env bash
# Builds the libFuzzer targets (preset fuzz: clang 14, ASan + UBSan) and runs each for a while
# on its seed corpus, then prints one line per target with the executions libFuzzer reports.
#   tools/fuzz.sh [--merge] [TARGET|MODULE|all] [SECONDS]
#     TARGET  e.g. fuzz_net_frame;  MODULE  codec, net, gossip, run or topology;  all (default)
#     SECONDS per target (default 60)
#     --merge  afterwards, add the inputs that reach new code to the corpus kept in the repo
# New inputs collect under ${TMPDIR:-/tmp}/rumor-fuzz-work/<target>, crashes there too.
# Exits non-zero when a target fails (crash, sanitizer report, leak, timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
merge=0
if [[ ${1:-} == --merge ]]; then merge=1; shift; fi
what=${1:-all}
seconds=${2:-60}
build=build/fuzz

cmake --preset fuzz >/dev/null
# Every fuzz executable: fuzz_<module>_<name>, less the helpers.
mapfile -t known < <(cmake --build "$build" --target help | sed -n 's/^\.\.\. \(fuzz_[a-z0-9_]*\).*/\1/p' |
  grep -v -e '_all$' -e '^fuzz_codec_seeds$' -e '_harness$' | sort)
targets=()
for t in "${known[@]}"; do
  module=${t#fuzz_}; module=${module%%_*}
  if [[ $what == all || $what == "$t" || $what == "$module" ]]; then targets+=("$t"); fi
done
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz.sh: no fuzz target matches '$what'; known: ${known[*]}" >&2
  exit 2
fi
cmake --build "$build" --target "${targets[@]}" -j2

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=${TMPDIR:-/tmp}/rumor-fuzz-work
status=0
summary=()
for t in "${targets[@]}"; do
  module=${t#fuzz_}; module=${module%%_*}
  name=${t#fuzz_"$module"_}
  corpus=fuzz/$module/corpus/$name
  mkdir -p "$work/$t" "$corpus"
  exe=$(find "$build/fuzz/$module" -maxdepth 1 -name "$t" -type f | head -n1)
  log=$work/$t.log
  echo "== $t: $seconds s on $corpus (log $log)"
  if (cd "$work/$t" && "$OLDPWD/$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 . "$OLDPWD/$corpus") >"$log" 2>&1; then
    result=clean
  else
    result="FAILED (see $log)"
    status=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  summary+=("$t: ${runs:-?} executions in $seconds s (${rate:-?} exec/s), $result")
  if [[ $merge -eq 1 && $result == clean ]]; then
    "$exe" -merge=1 "$corpus" "$work/$t" >>"$log" 2>&1
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
