#!/usr/bin/env bash
# scripts/slurm-local.sh start|stop|status|env [DIR] -- a single-node Slurm
# cluster on this machine, for trying and testing 'imgtriage backlog submit'.
#
#   start   make DIR (default $IMT_SLURM_DIR or /tmp/imgtriage-slurm): a munge
#           key, a slurm.conf for this host (CPUs, sockets, cores and memory as
#           'slurmd -C' finds them), then start munged, slurmctld and slurmd
#           with all their state under DIR, and wait until the node is idle.
#           Idempotent: a cluster already running from DIR is left as it is.
#   stop    stop the daemons started from DIR (by their pid files).
#   status  exit 0 when the cluster from DIR answers and its node is up.
#   env     print the line to use it: export SLURM_CONF=DIR/slurm.conf
#
# Needs the Debian packages slurm-wlm and munge (scripts/setup.sh) and root:
# slurmd starts jobs as their user. The daemons listen on localhost only, on
# ports 6917/6918 (IMT_SLURM_PORT, +1), so a site's own Slurm is untouched.
# Nothing is installed or changed outside DIR.
set -u
cmd=${1:-}
D=${2:-${IMT_SLURM_DIR:-/tmp/imgtriage-slurm}}
PORT=${IMT_SLURM_PORT:-6917}
export SLURM_CONF=$D/slurm.conf
say() { echo "slurm-local: $*" >&2; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
  pid_alive "$D/munged.pid" && pid_alive "$D/slurmctld.pid" && pid_alive "$D/slurmd.pid" &&
    sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'
}

stop() {
  for p in slurmd slurmctld munged; do
    if pid_alive "$D/$p.pid"; then
      pid=$(cat "$D/$p.pid")
      kill "$pid" 2>/dev/null
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$D/$p.pid"
  done
}

start() {
  for t in munged mungekey slurmctld slurmd sinfo sbatch; do
    command -v "$t" >/dev/null || { say "$t not found (apt-get install slurm-wlm munge)"; return 1; }
  done
  [ "$(id -u)" -eq 0 ] || { say "needs root (slurmd runs jobs as their user)"; return 1; }
  if up; then say "running already ($D)"; return 0; fi
  stop
  mkdir -p "$D/munge" "$D/state" "$D/spool" || return 1
  chmod 0700 "$D/munge"
  if [ ! -s "$D/munge/munge.key" ]; then
    mungekey --create --keyfile="$D/munge/munge.key" 2>/dev/null ||
      dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none || return 1
  fi
  chmod 0600 "$D/munge/munge.key"
  munged --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket" \
    --pid-file="$D/munged.pid" --log-file="$D/munged.log" --seed-file="$D/munge/seed" ||
    { say "munged did not start: $(tail -n 3 "$D/munged.log" 2>/dev/null)"; return 1; }
  host=$(hostname -s)
  # the node as slurmd sees it: CPUs, boards, sockets, cores, threads, memory
  node=$(slurmd -C 2>/dev/null | head -n 1)
  case $node in NodeName=*) ;; *) say "slurmd -C failed"; return 1;; esac
  node=$(echo "$node" | sed "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/")
  cat >"$SLURM_CONF" <<EOF
# written by imgtriage scripts/slurm-local.sh: a one-node cluster on localhost
ClusterName=imgtriage-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
$node State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  slurmctld -i >/dev/null 2>&1 || { say "slurmctld did not start: $(tail -n 5 "$D/slurmctld.log" 2>/dev/null)"; return 1; }
  slurmd >/dev/null 2>&1 || { say "slurmd did not start: $(tail -n 5 "$D/slurmd.log" 2>/dev/null)"; return 1; }
  for _ in $(seq 1 60); do
    if up; then say "up: $host, $(sinfo -h -o '%c CPUs, partition %P' | head -n 1) ($D)"; return 0; fi
    # a node that registered drained or down after an earlier run: resume it
    scontrol update nodename="$host" state=resume >/dev/null 2>&1
    sleep 0.5
  done
  say "the node did not come up: $(sinfo -h -o '%T %E' 2>&1 | head -n 2); slurmd: $(tail -n 3 "$D/slurmd.log" 2>/dev/null)"
  return 1
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) up ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  *) echo "usage: $0 start|stop|status|env [DIR]" >&2; exit 2 ;;
esac
