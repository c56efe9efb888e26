#!/usr/bin/env bash
# slurm-ci.sh start|stop|status: a throw-away SLURM cluster on this host for the tests:
# munged, slurmctld and one slurmd per simulated node (n1, n2), all as root, no systemd.
# It installs nothing (.ci/run installs slurm-wlm and munge) and touches nothing outside
# $SLURM_CI_DIR: its own munge key and socket, config, state and logs live there, and
# stop ends the daemons by the pids that start recorded there, never by name.
#
#   SLURM_CI_DIR=/tmp/x bash scripts/slurm-ci.sh start && export SLURM_CONF=/tmp/x/etc/slurm.conf
#
# Tunables: SLURM_CI_DIR [/tmp/slurm-ci], SLURM_CI_NODES [2], SLURM_CI_KILLWAIT [10 s],
# SLURM_CI_WAIT_S [60 s: how long start waits for every node to be idle],
# SLURM_CI_CPUS [nproc: CPUs each node offers; more lets test jobs that mostly sleep run at once],
# SLURM_CI_PORT [6817: slurmctld's; node i listens on PORT+i].
set -euo pipefail
D=${SLURM_CI_DIR:-/tmp/slurm-ci}
NODES=${SLURM_CI_NODES:-2}
KILLWAIT=${SLURM_CI_KILLWAIT:-10}
WAIT_S=${SLURM_CI_WAIT_S:-60}
PORT=${SLURM_CI_PORT:-6817}
CPUS=${SLURM_CI_CPUS:-$(nproc)}
export SLURM_CONF=$D/etc/slurm.conf

log() { echo "slurm-ci: $*" >&2; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
dump_logs() {
  local f
  for f in "$D"/logs/* "$D"/munge/munged.log; do
    if [ -f "$f" ]; then echo "== $f"; tail -n 8 "$f"; fi
  done >&2
}
fail() { log "$*"; dump_logs; stop; exit 1; }

need() {
  local b missing=()
  for b in munged mungekey munge slurmctld slurmd sinfo setpriv; do command -v "$b" >/dev/null || missing+=("$b"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "not installed: ${missing[*]} (apt-get install slurm-wlm munge)"; exit 3
  fi
  [ "$(id -u)" = 0 ] || { log "must run as root: the daemons run as root and munged as the munge user"; exit 3; }
  id munge >/dev/null 2>&1 || { log "no munge user (apt-get install munge creates it)"; exit 3; }
}

write_conf() {
  local h i
  h=$(hostname -s)
  # SlurmctldHost with an address avoids DNS. proctrack/linuxproc: cgroup v2 fails on a
  # hybrid host ("Hybrid mode is not supported") and v1 leaves directories behind.
  # cred_expire is also how long a requeued job waits before it may run again (default 120 s).
  cat > "$SLURM_CONF" <<CONF
ClusterName=ci
SlurmctldHost=$h(127.0.0.1)
SlurmctldPort=$PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket,cred_expire=10
MailProg=/bin/true
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/run/slurmctld.pidfile
SlurmdPidFile=$D/run/slurmd-%n.pidfile
SlurmctldLogFile=$D/logs/slurmctld.log
SlurmdLogFile=$D/logs/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/logs/jobcomp.log
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=$KILLWAIT
MinJobAge=300
InactiveLimit=0
Waittime=0
# nodes may claim more CPUs than the host has (SLURM_CI_CPUS) without being drained
SlurmdParameters=config_overrides
CONF
  for i in $(seq 1 "$NODES"); do
    echo "NodeName=n$i NodeHostname=$h NodeAddr=127.0.0.1 Port=$((PORT + i)) CPUs=$CPUS RealMemory=1024 State=UNKNOWN" >> "$SLURM_CONF"
  done
  echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >> "$SLURM_CONF"
}

start() {
  need
  if alive "$D/run/slurmctld.pid"; then log "already running"; return 0; fi
  local t0 i f states deadline
  t0=$(date +%s%N)
  rm -rf "$D/state" "$D/spool" "$D/run" "$D/logs"
  mkdir -p "$D/etc" "$D/state" "$D/spool" "$D/run" "$D/logs"
  chmod o+x "$D"   # munged (the munge user) must reach its socket dir
  install -d -o munge -g munge -m 0755 "$D/munge"
  [ -s "$D/munge/munge.key" ] || setpriv --reuid=munge --regid=munge --init-groups \
      mungekey --create --keyfile="$D/munge/munge.key"
  write_conf
  # setpriv execs (runuser would fork), so $! is munged itself
  setpriv --reuid=munge --regid=munge --init-groups munged -F \
      --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket" \
      --pid-file="$D/munge/munged.pid" --seed-file="$D/munge/munged.seed" \
      --log-file="$D/munge/munged.log" > "$D/logs/munged.out" 2>&1 &
  echo $! > "$D/run/munged.pid"
  # without munged every SLURM client stalls: make sure it answers first
  deadline=$(( $(date +%s) + 10 ))
  until munge -n -S "$D/munge/munge.socket" </dev/null >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "munged does not answer after 10 s"
    sleep 0.1
  done
  slurmctld -D -i -f "$SLURM_CONF" > "$D/logs/slurmctld.out" 2>&1 &
  echo $! > "$D/run/slurmctld.pid"
  for i in $(seq 1 "$NODES"); do
    mkdir -p "$D/spool/n$i"
    slurmd -D -N "n$i" -f "$SLURM_CONF" > "$D/logs/slurmd-n$i.out" 2>&1 &
    echo $! > "$D/run/slurmd-n$i.pid"
  done
  deadline=$(( $(date +%s) + WAIT_S ))
  while :; do
    for f in "$D"/run/*.pid; do alive "$f" || fail "$(basename "$f" .pid) died"; done
    states=$(sinfo -h -N -o '%T' 2>/dev/null | sort | uniq -c | tr -s ' ' | tr '\n' ';' || true)
    [ "$states" = " $NODES idle;" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || fail "nodes not idle after ${WAIT_S} s: $states"
    sleep 0.2
  done
  log "up: $NODES nodes idle after $(( ($(date +%s%N) - t0) / 1000000 )) ms; export SLURM_CONF=$SLURM_CONF"
}

stop() {
  local group f p deadline
  # cancel what is left and give it KillWait to end, then stop the daemons by pid
  if alive "$D/run/slurmctld.pid"; then
    scancel --quiet --user=root 2>/dev/null || true
    deadline=$(( $(date +%s) + KILLWAIT + 10 ))
    while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  fi
  # slurmd first (they report to slurmctld), then slurmctld, then munged: TERM, 10 s, KILL
  for group in "$D/run/slurmd-*.pid" "$D/run/slurmctld.pid" "$D/run/munged.pid"; do
    for f in $group; do
      if [ -f "$f" ]; then kill -TERM "$(cat "$f")" 2>/dev/null || true; fi
    done
    for f in $group; do
      [ -f "$f" ] || continue
      p=$(cat "$f")
      deadline=$(( $(date +%s) + 10 ))
      while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
      if kill -0 "$p" 2>/dev/null; then log "$(basename "$f" .pid) ($p) ignored SIGTERM: SIGKILL"; kill -KILL "$p" 2>/dev/null || true; fi
      rm -f "$f"
    done
  done
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo; squeue ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
