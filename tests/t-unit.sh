#!/usr/bin/env bash
# The in-process unit tests (build/tests/unittest, built with ASan+UBSan): the
# client core and stub policy against the server's request handler, the IP
# stack on crafted frames, overlay crash consistency, config parser errors.
. "$(dirname "$0")/lib.sh"
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
[ -x "$ND_BUILD/tests/unittest" ] || { fail unittest "not built (make check)"; exit 1; }
"$ND_BUILD/tests/unittest"
