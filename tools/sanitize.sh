#!/usr/bin/env bash
# The sanitizer pass of CI: builds the test suites of the fast modules with AddressSanitizer
# and UndefinedBehaviorSanitizer (preset asan, build/asan) and runs them. The cli suite
# (whole launches, minutes) is left to the release pass.
set -euo pipefail
cd "$(dirname "$0")/.."
labels=(common topology codec net data train config gossip run)
targets=()
for l in "${labels[@]}"; do targets+=("test_$l"); done
cmake --preset asan >/dev/null
cmake --build --preset asan --target "${targets[@]}"
# halt_on_error: the first report fails the test that caused it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --preset asan -L "^($(IFS='|'; echo "${labels[*]}"))$"
