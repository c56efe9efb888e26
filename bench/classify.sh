#!/usr/bin/env bash
# Side-by-side figures for the crash classifier (issue: classify): the inline classifier
# against grep -E -i over as many regular expressions as it has rules, each written as a
# user grepping for that failure would (its messages as alternatives, case ignored, any
# run of spaces or digits; classify/grep_bench_test.go), over the same 64 MiB of healthy
# training output (HF loss dicts, \r-rewritten tqdm bars, logging lines, rank-prefixed
# Lightning bars, warnings). Run from the repository root; the argument (trainwrap's
# path) is not needed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'BenchmarkHealthy$|BenchmarkHealthyFile$|BenchmarkGrepE$' -benchmem -benchtime 1s -count 1 ./classify/)
echo "$out" | grep -E '^Benchmark'
echo "$out" | awk '
	/^BenchmarkHealthy-/     { for (i = 1; i <= NF; i++) if ($i == "MB/s") inl = $(i-1); for (i = 1; i <= NF; i++) if ($i == "ns/line") nsl = $(i-1) }
	/^BenchmarkHealthyFile-/ { for (i = 1; i <= NF; i++) if ($i == "MB/s") file = $(i-1) }
	/^BenchmarkGrepE-/       { for (i = 1; i <= NF; i++) if ($i == "MB/s") grep = $(i-1); for (i = 1; i <= NF; i++) if ($i == "patterns") pats = $(i-1) }
	END {
		printf "%-44s %8s MB/s  (%s ns/line)\n", "classifier, lines in memory (one core)", inl, nsl
		printf "%-44s %8s MB/s\n", "classifier, reading the file", file
		printf "%-44s %8s MB/s\n", "grep -E -i -c -f <" pats " user regexes> (same file)", grep
	}'
