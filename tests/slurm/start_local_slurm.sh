#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for testing `snakemake --profile
# profiles/slurm-local` against a scheduler instead of a mock (recipe and traps:
# shared/reference/local-slurm.md; Debian 12, root, no systemd).
#
#   tests/slurm/start_local_slurm.sh start    install (apt) if needed, configure, start, wait idle
#   tests/slurm/start_local_slurm.sh stop     stop slurmd, slurmctld and munged by their pid files
#   tests/slurm/start_local_slurm.sh status   exit 0 when the node answers `idle`/`mixed`/`allocated`
#
# Idempotent: `start` on a running cluster only checks it. Every wait is bounded; a failure
# exits non-zero with one line naming what did not come up (and the tail of its log).
# No slurmdbd: accounting is off, so the profile must use `slurm-status-command: squeue`.
# Environment: DCL_SLURM_STATE (scratch folder, default /tmp/dcl-local-slurm),
#              DCL_SLURM_WAIT (seconds to wait for the node, default 60).
set -euo pipefail

STATE=${DCL_SLURM_STATE:-/tmp/dcl-local-slurm}
WAIT=${DCL_SLURM_WAIT:-60}
CONF=/etc/slurm/slurm.conf   # must be here: the jobstep plugin strips SLURM_CONF (trap 2)
GRES=/etc/slurm/gres.conf
MUNGE_PID=/run/munge/munged.pid

die() { echo "start_local_slurm: $*" >&2; exit 1; }

# alive PIDFILE NAME: the pid in PIDFILE runs NAME (a stale file's pid may belong to another
# process by now, which must neither count as the daemon nor be killed).
alive() {
    [[ -s $1 ]] || return 1
    local pid
    pid=$(cat "$1")
    [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

node_state() { timeout 5 sinfo -h -o %T 2>/dev/null | head -n1 || true; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return 0
    [[ $(id -u) -eq 0 ]] || die "not root: cannot apt-get install slurmctld slurmd slurm-client munge"
    command -v apt-get >/dev/null || die "apt-get not found: install slurmctld slurmd slurm-client munge yourself"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq || die "apt-get update failed or timed out"
    timeout 600 apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
        >/dev/null || die "apt-get install slurmctld slurmd slurm-client munge failed"
}

write_config() {
    local host mem
    host=$(hostname -s)
    # RealMemory a little under what slurmd sees, or the node is drained as "Low RealMemory".
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    [[ -n $mem ]] || die "slurmd -C reported no RealMemory"
    mem=$((mem * 8 / 10))
    local cpus
    cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
    mkdir -p "$STATE"/{ctld,d,run,log} /etc/slurm
    local tmp
    tmp=$(mktemp /etc/slurm/.slurm.conf.XXXXXX)
    cat >"$tmp" <<CONF
# Written by tests/slurm/start_local_slurm.sh: single-node test cluster, no accounting daemon.
ClusterName=localci
SlurmctldHost=${host}(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
EnforcePartLimits=ALL
ReturnToService=2
MinJobAge=300
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
GresTypes=gpu
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    chmod 644 "$tmp"
    mv -f "$tmp" "$CONF"
    # A fake GPU so rules asking for gpu=1 run unchanged; without File= the node goes INVAL.
    echo "NodeName=${host} Name=gpu File=/dev/null" >"$GRES.tmp" && mv -f "$GRES.tmp" "$GRES"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

node_ready() { [[ $(node_state) =~ ^(idle|mixed|allocated)$ ]]; }

start() {
    if alive "$STATE/run/slurmctld.pid" slurmctld && alive "$STATE/run/slurmd.pid" slurmd && node_ready; then
        echo "local SLURM already running ($(node_state)); state in $STATE"
        return 0
    fi
    install_packages
    write_config
    if ! alive "$MUNGE_PID" munged; then
        install -d -o munge -g munge -m 0755 /run/munge
        runuser -u munge -- /usr/sbin/munged || die "munged did not start"
    fi
    wait_for 10 munge alive "$MUNGE_PID" munged || die "munged wrote no live pid to $MUNGE_PID"
    alive "$STATE/run/slurmctld.pid" slurmctld || slurmctld || die "slurmctld did not start: $(tail -n3 "$STATE/log/slurmctld.log" 2>/dev/null)"
    alive "$STATE/run/slurmd.pid" slurmd || slurmd || die "slurmd did not start: $(tail -n3 "$STATE/log/slurmd.log" 2>/dev/null)"
    if ! wait_for "$WAIT" node node_ready; then
        die "node not idle after ${WAIT}s (state '$(node_state)'): $(tail -n3 "$STATE/log/slurmctld.log" 2>/dev/null)"
    fi
    echo "local SLURM up ($(node_state)); state and logs in $STATE"
}

stop_pid() {  # stop_pid PIDFILE NAME: TERM, wait up to 10 s, then KILL
    local file=$1 pid
    alive "$file" "$2" || return 0
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    wait_for 10 "$2" bash -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null || true
}

stop() {
    stop_pid "$STATE/run/slurmd.pid" slurmd
    stop_pid "$STATE/run/slurmctld.pid" slurmctld
    stop_pid "$MUNGE_PID" munged
    echo "local SLURM stopped"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) node_ready ;;
    *) die "usage: $0 start|stop|status" ;;
esac
