#!/usr/bin/env bash
# Side-by-side figures for the supervisor (issue: trainwrap run):
#   throughput of 1 GiB of training-log lines: no wrapper, tee FILE, trainwrap --pty never;
#   child exit -> verdict and exit -> next exec latency (p50/p99) in a zero-backoff crash loop;
#   supervisor RSS and idle CPU.
# Usage: bench/shim.sh [path/to/trainwrap]   (SIZE=bytes to change the volume)
set -euo pipefail
TW=$(realpath "${1:-bin/trainwrap}")
SIZE=${SIZE:-1073741824}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
line="{'loss': 0.6948, 'learning_rate': 5e-05, 'epoch': 0.78}"
job="yes \"$line\" | head -c $SIZE"

now() { date +%s.%N; }
rate() { awk -v s="$SIZE" -v a="$1" -v b="$2" 'BEGIN { printf "%.0f MB/s", s / (b - a) / 1e6 }'; }

echo "== throughput, $((SIZE >> 20)) MiB of log lines, best of 2"
best() { # name, command...
	local name=$1; shift
	local top=0
	for _ in 1 2; do
		t0=$(now); "$@" >/dev/null; t1=$(now)
		r=$(awk -v s="$SIZE" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / (b - a) / 1e6 }')
		[ "$r" -gt "$top" ] && top=$r
		rm -rf .trainwrap tee.out
	done
	printf "%-28s %6d MB/s\n" "$name" "$top"
	echo "$top" >"rate.$name"
}
best none sh -c "$job"
best tee sh -c "$job | tee tee.out"
# One log file, as tee writes one: the default rotation gzips every 100 MB in the
# background, which on a small machine competes with the copy (second row).
best trainwrap "$TW" --pty never --skip-preflight --sample-interval 0 --log-max-size 4096 -- sh -c "$job"
best trainwrap-rotating "$TW" --pty never --skip-preflight --sample-interval 0 -- sh -c "$job"
awk -v t="$(cat rate.tee)" -v w="$(cat rate.trainwrap)" 'BEGIN { printf "trainwrap / tee             %6.2f x\n", w / t }'

echo "== latency, zero-backoff crash loop of 200 attempts"
"$TW" --pty never --skip-preflight --backoff-initial 0 --max-restarts-in-window 0 --max-failures-without-progress 0 \
	--max-restarts 199 -- sh -c 'date +%s%N >>starts; date +%s%N >>exits; exit 3' 2>/dev/null >/dev/null || true
# verdict time = the record's "end"; exit time = the job's last timestamp.
grep -o '"end":"[^"]*"' .trainwrap/runs.jsonl | cut -d'"' -f4 | while read -r e; do date -d "$e" +%s%N; done >ends
paste exits ends | awk '{ print ($2 - $1) / 1e6 }' | sort -n >verdict.ms
paste <(head -n -1 exits) <(tail -n +2 starts) | awk '{ print ($2 - $1) / 1e6 }' | sort -n >next.ms
pct() { awk -v p="$2" '{ a[NR] = $1 } END { i = int(NR * p / 100); if (i < 1) i = 1; printf "%.2f", a[i] }' "$1"; }
echo "exit -> verdict (ms)        p50 $(pct verdict.ms 50)  p99 $(pct verdict.ms 99)   (includes the job's own date(1) fork)"
echo "exit -> next exec (ms)      p50 $(pct next.ms 50)  p99 $(pct next.ms 99)   (includes sh start-up and date(1))"
rm -rf .trainwrap

echo "== supervisor RSS and idle CPU over 10 s (job: sleep)"
"$TW" --pty never --skip-preflight -- sleep 12 >/dev/null 2>&1 &
pid=$!
sleep 1.5
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
c0=$(ticks); sleep 10; c1=$(ticks)
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
hz=$(getconf CLK_TCK)
echo "supervisor RSS              $((rss / 1024)) MB"
awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { printf "supervisor idle CPU         %.3f%% of one core\n", (b - a) / hz / 10 * 100 }'
wait "$pid" || true
