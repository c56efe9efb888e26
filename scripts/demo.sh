#!/usr/bin/env bash
# make demo: trainwrap supervises the chaos trainer (a fake HF Trainer job that writes
# real checkpoints), which runs out of GPU memory at step 30 of 60. trainwrap names the
# crash, suggests a fix, backs off, resumes from checkpoint-20, and the job completes.
# Usage: scripts/demo.sh PATH/TO/trainwrap   (the Makefile builds it first)
set -euo pipefail

bin=${1:-bin/trainwrap}
if [ ! -x "$bin" ]; then
	echo "demo: $bin is not an executable trainwrap; run 'make demo', which builds it" >&2
	exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

work=$(mktemp -d "${TMPDIR:-/tmp}/trainwrap-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p out

if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi

say "trainwrap run -- trainwrap chaos train --fail cuda-oom --fail-at 30 (a CUDA OOM at step 30 of 60)"
set +e
"$bin" --state-dir "$work/run" run \
	--skip-preflight \
	--progress-regex 'global_step=(\d+)' \
	--stall-timeout 1m --backoff-initial 2s \
	-- "$bin" chaos train --output_dir "$work/out" \
	--max-steps 60 --save-steps 10 --step-time 100ms \
	--fail cuda-oom --fail-at 30 --fail-attempts 1
code=$?
set -e

say "trainwrap exited $code"
say "trainwrap history"
"$bin" --state-dir "$work/run" history

say "trainwrap checkpoints list"
# The newest checkpoints are seconds old: a short quiet period judges them now.
"$bin" checkpoints list --quiet-period 1ms "$work/out"

exit "$code"
