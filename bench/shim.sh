#!/usr/bin/env bash
# Side-by-side figures for the supervisor (issue: trainwrap run):
#   throughput of 256 MiB of training-log lines: no wrapper, tee FILE, trainwrap --pty never;
#   the same through a pty: script -qfec against trainwrap --pty always;
#   child exit -> verdict and exit -> next exec latency (p50/p99) in a zero-backoff crash
#   loop, against the same job in a bare shell loop (fork+wait);
#   supervisor CPU for 4x the output against 1x (linear: 4x);
#   supervisor, guard and sentinel RSS (and PSS), and idle CPU over IDLE s [60] of a job
#   that prints nothing, against tini when installed and an empty Go program (the floor).
# Each figure issue 12 compares is also printed as a ROW line for bench/summary.sh.
# Usage: bench/shim.sh [path/to/trainwrap]   (SIZE=bytes to change the volume, RUNS=n the
# runs of each figure, ONLY=output for the throughput and CPU rows alone)
set -euo pipefail
TW=$(realpath "${1:-bin/trainwrap}")
SIZE=${SIZE:-268435456}
RUNS=${RUNS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# 120 bytes a line with its newline, an HF Trainer log dict, as issue 12 measures.
line="{'loss': 0.6948, 'grad_norm': 1.2345, 'learning_rate': 4.9e-05, 'epoch': 0.78, 'step': 1234, 'tokens_per_sec': 51234.5}"
job="yes \"$line\" | head -c $SIZE"

now() { date +%s.%N; }

echo "== throughput, $((SIZE >> 20)) MiB of $((${#line} + 1))-byte log lines, median of $RUNS, alternating"
# Each pair runs in turns, A B A B ..., so a neighbour's load on this shared machine
# falls on both sides alike; the figure is the median rate.
rate_of() { # command...: prints MB/s of one run
	local t0 t1
	t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now)
	rm -rf .trainwrap tee.out script.out
	awk -v s="$SIZE" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", s / (b - a) / 1e6 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
duel() { # nameA nameB: runs cmd_<name> for each in turns, writes rate.<name>, prints both
	local a=$1 b=$2
	: >"runs.$a"; : >"runs.$b"
	for _ in $(seq "$RUNS"); do
		rate_of "cmd_$a" >>"runs.$a"
		rate_of "cmd_$b" >>"runs.$b"
	done
	for n in "$a" "$b"; do
		median <"runs.$n" >"rate.$n"
		printf "%-28s %6d MB/s   (runs: %s)\n" "$n" "$(cat "rate.$n")" "$(tr '\n' ' ' <"runs.$n")"
	done
}
cmd_none() { sh -c "$job"; }
cmd_tee() { sh -c "$job | tee tee.out"; }
# One log file, as tee writes one: the default rotation gzips every 100 MB in the
# background, which on a small machine competes with the copy (second row).
cmd_trainwrap() { "$TW" --pty never --skip-preflight --sample-interval 0 --log-max-size 4096 -- sh -c "$job"; }
cmd_trainwrap-rotating() { "$TW" --pty never --skip-preflight --sample-interval 0 -- sh -c "$job"; }
# script(1) needs no terminal of its own; its typescript file is the log, as train.log is ours.
cmd_script() { script -qfec "$job" script.out; }
cmd_trainwrap-pty() { "$TW" --pty always --skip-preflight --sample-interval 0 -- sh -c "$job"; }
echo "none (the job alone)         $(rate_of cmd_none) MB/s"
duel tee trainwrap
awk -v t="$(cat rate.tee)" -v w="$(cat rate.trainwrap)" 'BEGIN { printf "trainwrap (one file) / tee  %6.2f x\n", w / t }'
duel tee trainwrap-rotating
awk -v t="$(cat rate.tee)" -v w="$(cat rate.trainwrap-rotating)" 'BEGIN { printf "trainwrap (rotating) / tee  %6.2f x\n", w / t }'
# The issue's row is default flags: rotation on.
echo "ROW|pipe output, $((SIZE >> 20)) MiB, default flags|$(cat rate.trainwrap-rotating)|tee FILE|$(cat rate.tee)|MB/s|ratio>=1.0"
duel script trainwrap-pty
echo "ROW|--pty always, $((SIZE >> 20)) MiB|$(cat rate.trainwrap-pty)|script -qfec|$(cat rate.script)|MB/s|ratio>=1.0"

echo "== supervisor CPU for 4x the output (default flags)"
# The supervisor's own ticks (its job's are not in them), last read every 0.1 s while it
# runs: the loss is under one read's worth, at either volume.
cpu_of() { # bytes: supervisor CPU seconds
	local pid t=0 v
	"$TW" --pty never --skip-preflight --sample-interval 0 -- sh -c "yes \"$line\" | head -c $1" >/dev/null 2>&1 &
	pid=$!
	while v=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null); do t=$v; sleep 0.1; done
	wait "$pid" || true
	rm -rf .trainwrap
	awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
# Alternating 1x and 4x, the median of each.
: >cpu.1; : >cpu.4
for _ in $(seq "$RUNS"); do cpu_of "$SIZE" >>cpu.1; echo >>cpu.1; cpu_of $((SIZE * 4)) >>cpu.4; echo >>cpu.4; done
c1=$(median <cpu.1); c4=$(median <cpu.4)
echo "supervisor CPU: $c1 s for $((SIZE >> 20)) MiB, $c4 s for $((SIZE >> 18)) MiB"
echo "ROW|CPU, 4x vs 1x the output ($((SIZE >> 20)) MiB)|$(awk -v a="$c1" -v b="$c4" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')|linear|4|x|value<=4.2"

# ONLY=output stops here: the rows of the output path alone.
[ "${ONLY:-}" = output ] && exit 0

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
# The anchor: the same job and timestamps in a bare shell loop, whose "verdict" is the
# parent's date(1) after wait; the same forks are in both figures.
rm -f starts exits
for _ in $(seq 200); do sh -c 'date +%s%N >>starts; date +%s%N >>exits; exit 3' || date +%s%N >>ends.bare; done
paste exits ends.bare | awk '{ print ($2 - $1) / 1e6 }' | sort -n >verdict.bare
paste <(head -n -1 exits) <(tail -n +2 starts) | awk '{ print ($2 - $1) / 1e6 }' | sort -n >next.bare
echo "bare shell loop (ms)        verdict p50 $(pct verdict.bare 50) p99 $(pct verdict.bare 99); next exec p50 $(pct next.bare 50) p99 $(pct next.bare 99)"
echo "ROW|child exit -> verdict p50|$(pct verdict.ms 50)|bare fork+wait|$(pct verdict.bare 50)|ms|-"
echo "ROW|child exit -> verdict p99|$(pct verdict.ms 99)|bare fork+wait|$(pct verdict.bare 99)|ms|value<=5"
echo "ROW|exit -> next exec p50 (backoff 0)|$(pct next.ms 50)|bare shell loop|$(pct next.bare 50)|ms|-"
echo "ROW|exit -> next exec p99 (backoff 0)|$(pct next.ms 99)|bare shell loop|$(pct next.bare 99)|ms|value<=20"

IDLE=${IDLE:-60}
echo "== supervisor RSS and idle CPU over $IDLE s (job: sleep, prints nothing)"
# The footprint is the wrapper and its helpers (trainwrap's guard and sentinel are
# re-executions of trainwrap, its direct children with its name); the job itself is
# left out. The window is long: the supervisor's housekeeping backs off while the job is
# quiet, so a short one would catch only the first ticks.
procs() { # pid: it and its children of the same name
	local c
	c=$(cat "/proc/$1/comm")
	echo "$1"
	for k in $(ps -o pid= --ppid "$1"); do [ "$(cat "/proc/$k/comm" 2>/dev/null)" = "$c" ] && echo "$k"; done
	true
}
role() { # pid: supervisor, guard or sentinel
	local a
	a=$(tr '\0' ' ' <"/proc/$1/cmdline")
	case "$a" in
	*" guard "*--sentinel*) echo sentinel ;;
	*" guard "*) echo guard ;;
	*) echo supervisor ;;
	esac
}
footprint() { # name, command...: prints "RSS-kB idle-CPU-%"; per process in foot.NAME.ROLE
	local pid ps0 c0 c1 rss hz q
	"${@:2}" >/dev/null 2>&1 &
	pid=$!
	sleep 1.5
	ps0=$(procs "$pid")
	ticks() { for q in $ps0; do awk '{ print $14 + $15 }' "/proc/$q/stat"; done | awk '{ t += $1 } END { print t }'; }
	c0=$(ticks); sleep "$IDLE"; c1=$(ticks)
	rss=$(for q in $ps0; do awk '/VmRSS/ { print $2 }' "/proc/$q/status"; done | awk '{ t += $1 } END { print t }')
	for q in $ps0; do
		# RSS counts the executable's pages shared between the three in each; PSS
		# divides them among their users.
		echo "$(awk '/VmRSS/ { print $2 }' "/proc/$q/status") $(awk '/^Pss:/ { print $2 }' "/proc/$q/smaps_rollup" 2>/dev/null || echo 0)" >"foot.$1.$(role "$q")"
	done
	hz=$(getconf CLK_TCK)
	wait "$pid" || true
	printf "%-28s %6.1f MB RSS (%d processes), idle CPU %.3f%% of one core\n" "$1" "$(awk -v r="$rss" 'BEGIN { print r / 1024 }')" \
		"$(echo "$ps0" | wc -w)" "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$IDLE" 'BEGIN { print (b - a) / hz / s * 100 }')"
	echo "$rss $(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$IDLE" 'BEGIN { printf "%.3f", (b - a) / hz / s * 100 }')" >"foot.$1"
}
footprint trainwrap "$TW" --pty never --skip-preflight -- sleep $((IDLE + 3))
read -r tw_rss tw_cpu <foot.trainwrap
for r in supervisor guard sentinel; do
	if [ -f "foot.trainwrap.$r" ]; then
		read -r rss pss <"foot.trainwrap.$r"
		printf "  %-26s %6.1f MB RSS, %6.1f MB PSS\n" "$r" "$(awk -v r="$rss" 'BEGIN { print r / 1024 }')" "$(awk -v r="$pss" 'BEGIN { print r / 1024 }')"
		echo "$rss" >"rss.$r"
	else
		echo "  $r                   (not running: no cgroup here for the sentinel?)"
		echo - >"rss.$r"
	fi
done
# The floor of any Go process here: an empty program that sleeps.
floor=-
if command -v go >/dev/null; then
	mkdir -p empty && printf 'package main\n\nimport "time"\n\nfunc main() { time.Sleep(3 * time.Second) }\n' >empty/main.go
	if (cd empty && go build -o ../empty-go main.go) 2>/dev/null; then
		./empty-go & e=$!
		sleep 1
		floor=$(awk '/VmRSS/ { print $2 }' "/proc/$e/status")
		wait "$e" || true
		echo "empty Go program             $(awk -v r="$floor" 'BEGIN { printf "%.1f", r / 1024 }') MB RSS (the floor of one Go process)"
	fi
fi
if command -v tini >/dev/null; then
	footprint tini tini -s -- sleep $((IDLE + 3))
	read -r ti_rss ti_cpu <foot.tini
	anchor=tini
else
	echo "tini                         (not installed: apt-get install tini; no anchor)"
	ti_rss=- ti_cpu=- anchor="tini (not installed)"
fi
mb() { [ "$1" = - ] && echo - || awk -v r="$1" 'BEGIN { printf "%.1f", r / 1024 }'; }
echo "ROW|supervisor RSS, guards included|$(mb "$tw_rss")|$anchor|$(mb "$ti_rss")|MB|value<=12"
echo "ROW|  supervisor alone|$(mb "$(cat rss.supervisor)")|$anchor|$(mb "$ti_rss")|MB|-"
echo "ROW|  guard|$(mb "$(cat rss.guard)")|empty Go program|$(mb "$floor")|MB|-"
echo "ROW|  sentinel|$(mb "$(cat rss.sentinel)")|empty Go program|$(mb "$floor")|MB|-"
echo "ROW|supervisor idle CPU ($IDLE s, quiet job)|$tw_cpu|$anchor|$ti_cpu|% core|value<=0.05"
