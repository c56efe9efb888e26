"""Checks the torchrun scripts run against a live or finished trainwrap run.

    jobcheck.py await FILE REGEX COUNT [SECONDS]  wait until FILE has COUNT lines matching REGEX
    jobcheck.py count FILE TEXT N                  fail unless TEXT occurs exactly N times in FILE
    jobcheck.py freeport FILE                      write a free TCP port of 127.0.0.1 into FILE
    jobcheck.py signal STATE_DIR SIGNAME           send SIGNAME to the supervisor of STATE_DIR
    jobcheck.py survivors STATE_DIR...             fail if any process of those runs is alive

Every wait has a deadline; a process counts as the supervisor only if its pid and start
time match state.json, and as the job's only if it carries the run's TRAINWRAP_RUN_ID.
"""

import json
import os
import re
import signal
import sys
import time


def await_lines(path, regex, count, seconds=60.0):
    pattern = re.compile(regex)
    deadline = time.monotonic() + seconds
    found = 0
    while time.monotonic() < deadline:
        try:
            with open(path, errors="replace") as f:
                found = sum(1 for line in f if pattern.search(line))
        except FileNotFoundError:
            found = 0
        if found >= count:
            return 0
        time.sleep(0.05)
    print(f"jobcheck: {path}: {found} of {count} lines matching {regex!r} after {seconds:g} s", file=sys.stderr)
    return 1


def count(path, text, want):
    # Counted in the whole text, not per line: fault handlers that dump at the same
    # moment interleave their writes, so one line may hold the start of two dumps.
    with open(path, errors="replace") as f:
        got = f.read().count(text)
    if got != want:
        print(f"jobcheck: {path}: {text!r} occurs {got} times, want {want}", file=sys.stderr)
        return 1
    return 0


def freeport(path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(path, "w") as f:
        f.write(f"{port}\n")
    return 0


def start_time(pid):
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces and parentheses: fields count from the last ')'.
        return int(f.read().rsplit(")", 1)[1].split()[19])


def signal_supervisor(state_dir, signame):
    with open(os.path.join(state_dir, "state.json")) as f:
        sup = json.load(f)["supervisor"]
    try:
        if start_time(sup["pid"]) != sup["start_time"]:
            raise ProcessLookupError
    except (OSError, ProcessLookupError):
        print(f"jobcheck: the supervisor of {state_dir} (pid {sup['pid']}) is not running", file=sys.stderr)
        return 1
    os.kill(sup["pid"], signal.Signals["SIG" + signame])
    return 0


def survivors(state_dirs):
    ids = set()
    for d in state_dirs:
        with open(os.path.join(d, "state.json")) as f:
            ids.add(json.load(f)["run_id"])
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state == "Z":
            continue
        for kv in env:
            if kv.startswith(b"TRAINWRAP_RUN_ID=") and kv.split(b"=", 1)[1].decode() in ids:
                alive.append(f"{pid} {cmd}")
    for a in alive:
        print(f"survivor: {a}")
    return 1 if alive else 0


def main(argv):
    if len(argv) >= 4 and argv[0] == "await":
        return await_lines(argv[1], argv[2], int(argv[3]), float(argv[4]) if len(argv) > 4 else 60.0)
    if len(argv) == 4 and argv[0] == "count":
        return count(argv[1], argv[2], int(argv[3]))
    if len(argv) == 2 and argv[0] == "freeport":
        return freeport(argv[1])
    if len(argv) == 3 and argv[0] == "signal":
        return signal_supervisor(argv[1], argv[2])
    if len(argv) >= 2 and argv[0] == "survivors":
        return survivors(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
