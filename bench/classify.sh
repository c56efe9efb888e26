#!/usr/bin/env bash
# Side-by-side figures for the crash classifier (issue: classify): `trainwrap classify`
# of a healthy training log against `grep -E -c -f bench/grep-62.txt` (62 regexes a user
# would write for the failures trainwrap names) over the same file, page cache warm,
# median of 5 runs in turns (RUNS=n to change). The Go benchmarks BenchmarkHealthy and
# BenchmarkGrepE (make bench runs them)
# give the in-process figures.
# Usage: bench/classify.sh [path/to/trainwrap]   (SIZE=bytes to change the log's size)
set -euo pipefail
pats=$(realpath "$(dirname "$0")/grep-62.txt")
TW=$(realpath "${1:-bin/trainwrap}")
SIZE=${SIZE:-268435456}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Healthy output: HF loss dicts, \r-rewritten tqdm bars, logging lines, rank-prefixed
# Lightning bars, a warning; repeated up to SIZE bytes.
{
	for i in $(seq 1 40); do
		echo "{'loss': 0.$((6900 + i)), 'grad_norm': 1.$i, 'learning_rate': 5e-05, 'epoch': 0.$i}"
		printf ' %d%%|####      | %d/1000 [00:%02d<01:10, 14.2it/s]\r' "$i" "$i" "$i"
		echo "2026-12-02 03:00:$((i % 60)) - INFO - trainer - step $i: tokens/s 51234, mfu 0.41"
		echo "[rank$((i % 8))]: Epoch 0:  $i%|#         | $i/1000 [00:$i<02:00, 8.1it/s, v_num=3, train_loss=2.$i]"
	done
	echo "/usr/lib/python3/dist-packages/torch/utils/data/dataloader.py:558: UserWarning: This DataLoader will create 8 worker processes in total."
} >block
while [ "$(stat -c %s block)" -lt "$SIZE" ]; do cat block block >block2 && mv block2 block; done
head -c "$SIZE" block >healthy.log && rm block
cat healthy.log >/dev/null

RUNS=${RUNS:-5}
now() { date +%s.%N; }
rate_of() { # command...: MB/s of one run
	local t0 t1
	t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now)
	awk -v s="$SIZE" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / (b - a) / 1e6 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# The classifier must find nothing here; a class would mean a rule matches healthy output.
# A classify that fails (exit, panic) stops the script: its rate would be no rate.
class=$("$TW" classify --quiet healthy.log)
matches=$(grep -E -c -f "$pats" healthy.log || true)
# In turns, trainwrap then grep, so a neighbour's load falls on both alike.
: >runs.tw; : >runs.grep
for _ in $(seq "$RUNS"); do
	rate_of "$TW" classify --quiet healthy.log >>runs.tw; echo >>runs.tw
	rate_of grep -E -c -f "$pats" healthy.log >>runs.grep; echo >>runs.grep
done
tw=$(median <runs.tw); gr=$(median <runs.grep)
# CPU seconds of one classify, user and system: the rate per core.
cpu=$( { /usr/bin/time -f "%U %S" "$TW" classify --quiet healthy.log >/dev/null; } 2>&1 | tail -1)
echo "== classify, $((SIZE >> 20)) MiB healthy log, page cache warm, median of $RUNS, alternating"
echo "runs: trainwrap $(tr '\n' ' ' <runs.tw)| grep $(tr '\n' ' ' <runs.grep)"
echo "trainwrap classify CPU: $cpu (user, system s): $(echo "$cpu" | awk -v s="$SIZE" '{ printf "%.0f", s / ($1 + $2) / 1e6 }') MB/s per CPU second"
printf "%-44s %6d MB/s  (class: %s)\n" "trainwrap classify FILE" "$tw" "${class:-none}"
printf "%-44s %6d MB/s  (%s lines matched)\n" "grep -E -c -f grep-62.txt FILE" "$gr" "$matches"
# Wall-clock rate of one process; the goal per core holds when classify uses one core.
echo "ROW|classify healthy log, $((SIZE >> 20)) MiB|$tw|grep -E -f (62 regexes)|$gr|MB/s|ratio>=1.5,value>=1000"
