#!/usr/bin/env bash
# The one table of issue 12: reads the ROW lines the other bench scripts print, one per
# measure, and prints trainwrap's figure, the anchor's from the same run, their ratio,
# the goal and whether it is met.
# A ROW line: ROW|measure|trainwrap|anchor name|anchor|unit|goal
#   goal: "ratio>=N" (trainwrap / anchor), "value<=N" or "value>=N" (trainwrap's figure),
#   several joined by ",", or "-" for none; an anchor of "-" was not measured.
# Usage: bench/summary.sh FILE...   (the scripts' output)
set -euo pipefail
grep -h '^ROW|' "$@" | awk -F'|' '
	function met(goal, v, r,   n, i, g, op, want, x, ok) {
		if (goal == "-") return "n/a"
		n = split(goal, g, ",")
		ok = "met"
		for (i = 1; i <= n; i++) {
			if (match(g[i], /(<=|>=)/) == 0) return "bad goal"
			op = substr(g[i], RSTART, 2); want = substr(g[i], RSTART + 2) + 0
			x = substr(g[i], 1, RSTART - 1) == "ratio" ? r : v
			if (x == "") return "n/a (no anchor)"
			if ((op == ">=" && x + 0 < want) || (op == "<=" && x + 0 > want)) ok = "NOT MET"
		}
		return ok
	}
	{
		r = ($5 != "-" && $5 + 0 != 0 && $3 != "-") ? sprintf("%.2f", $3 / $5) : ""
		printf "%-42s %10s %-22s %10s %-7s %7s  %-22s %s\n", $2, $3, $4, $5, $6, r == "" ? "-" : r "x", $7, met($7, $3, r)
	}
	BEGIN { printf "%-42s %10s %-22s %10s %-7s %7s  %-22s %s\n", "measure", "trainwrap", "anchor", "figure", "unit", "ratio", "goal", "verdict" }
'
