#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The tree's own rules: every source file carries the SPDX licence line near its top
# (not the Debian files whose format is fixed: changelog, copyright, which states
# the licence itself, source/format, README.Debian).
. "$(dirname "$0")/lib.sh"
requires cmd:git
cd "$ND_TOP" || exit 1
[ -d .git ] || [ -f .git ] || { skip spdx-every-source-file "not a git checkout"; exit 0; }
missing=$(git ls-files | grep -v -E '\.(md|png|txt)$|^LICENSE$|^\.gitignore$|^bench/results/|^bench/traces/.*\.gz$|^debian/(changelog|copyright|source/format|README\.Debian)$' |
	while read -r f; do head -n 2 "$f" | grep -q 'SPDX-License-Identifier: GPL-2.0-or-later' || echo "$f"; done)
if [ -z "$missing" ]; then
	pass spdx-every-source-file
else
	fail spdx-every-source-file "no SPDX line in: $(echo $missing)"
fi
