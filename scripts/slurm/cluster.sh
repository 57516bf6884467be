#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on localhost, for tests.
#
#   cluster.sh install        apt-get install slurm-wlm and munge when missing
#   cluster.sh start DIR      generate a config under DIR, start munged,
#                             slurmctld and slurmd, wait until the node is idle,
#                             print "export SLURM_CONF=DIR/slurm.conf" on stdout
#   cluster.sh stop DIR       cancel every job, stop the daemons by their
#                             recorded pids (TERM, then KILL), sweep leftover
#                             job steps; safe to run twice or after a failed start
#   cluster.sh status DIR     each daemon's pid and state, and sinfo; exit 0
#                             only when all three daemons are up
#   cluster.sh env DIR        print the export line again
#
# Everything the cluster owns lives under DIR: slurm.conf, the munge key and
# socket, the controller state, the slurmd spool, logs, and the pid list
# DIR/pids. Nothing under /etc or /run is read or written, so several clusters
# (each with its own DIR and free ports) can run side by side with a system
# Slurm. Processes are only ever signalled by a pid this script recorded (or a
# job step carrying this cluster's marker in its environment), never by name.
#
# Tunables (environment):
#   SLURM_TEST_CPUS   declare this many CPUs on the node instead of the
#                     detected count (SlurmdParameters=config_overrides), so
#                     more array tasks run at once on a small machine
#   SLURM_TEST_PORT   first of two consecutive TCP ports (slurmctld, slurmd);
#                     default: a free pair picked at random in 20000-32000
#   SLURM_TEST_TIMEOUT seconds to wait for the node to come up (default 30)
#
# The daemons run as root (SlurmUser=root), which is what CI has. munged is
# started with --force because its socket-directory check rejects any parent
# directory without o+x (Go's t.TempDir() parents are 0700); only root talks
# to it here.
set -euo pipefail

NODE=node1                # fixed node name: independent of the host name
PARTITION=debug
MARKER=DAPOBENCH_SLURM_CLUSTER   # set in the daemons' environment

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

# ---------------------------------------------------------------- install

cmd_install() {
  local missing=()
  for pkg in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "need root to apt-get install ${missing[*]}"
  log "installing ${missing[*]} from apt"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet.
  if ! apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
  fi
  # The packages' init scripts may try to start system daemons (without
  # systemd they do not); this cluster never uses them.
}

# ---------------------------------------------------------------- helpers

# alive PID NAME: the process exists, is not a zombie, and is NAME.
# (Under a PID 1 that does not reap, a killed daemon stays a zombie, which
# kill -0 still reports as alive.)
alive() {
  local pid=$1 name=$2 stat comm
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  comm=${stat#*(}; comm=${comm%)*}
  local state=${stat##*) }; state=${state%% *}
  [ "$state" != Z ] && [ "$state" != X ] || return 1
  [ -z "$name" ] || [ "$comm" = "$name" ]
}

pid_of() { # pid_of DIR NAME -> recorded pid or empty
  [ -f "$1/pids" ] || return 0
  awk -v n="$2" '$1 == n { print $2 }' "$1/pids" | tail -n 1
}

port_in_use() { # listening on TCP port $1 (v4 or v6)?
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

pick_ports() {
  if [ -n "${SLURM_TEST_PORT:-}" ]; then
    CTLD_PORT=$SLURM_TEST_PORT; SLURMD_PORT=$((SLURM_TEST_PORT + 1)); return
  fi
  local i p
  for i in $(seq 50); do
    p=$((20000 + (RANDOM % 6000) * 2))
    if ! port_in_use "$p" && ! port_in_use $((p + 1)); then
      CTLD_PORT=$p; SLURMD_PORT=$((p + 1)); return
    fi
  done
  die "no free pair of TCP ports found in 20000-32000"
}

need_dir() {
  [ -n "${1:-}" ] || die "missing DIR (usage: cluster.sh $cmd DIR)"
  case $1 in /*) ;; *) die "DIR must be an absolute path, got $1" ;; esac
}

# wait_for SECONDS DAEMON DESCRIPTION COMMAND...: poll COMMAND every 0.2 s;
# give up early when DAEMON (a name in DIR/pids) has exited.
wait_for() {
  local secs=$1 daemon=$2 what=$3; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    alive "$(pid_of "$DIR" "$daemon")" "$daemon" || { log "$daemon exited while waiting for $what"; return 1; }
    [ $SECONDS -lt $deadline ] || { log "timed out after ${secs}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

show_logs() {
  local f
  for f in "$DIR"/log/*; do
    [ -s "$f" ] || continue
    echo "---- $f (last 15 lines)" >&2
    tail -n 15 "$f" >&2
  done
}

# ---------------------------------------------------------------- start

write_conf() {
  local hw cpus mem overrides=""
  # slurmd -C prints this machine's node line, e.g.
  # NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
  hw=$(slurmd -C 2>/dev/null | head -n 1) || true
  [ -n "$hw" ] || die "slurmd -C printed nothing; cannot detect CPUs and memory"
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  [ -n "$mem" ] || die "no RealMemory in slurmd -C output: $hw"
  if [ -n "${SLURM_TEST_CPUS:-}" ]; then
    cpus="CPUs=$SLURM_TEST_CPUS"
    overrides="SlurmdParameters=config_overrides"
  else
    # Keep the detected topology (CPUs, sockets, cores, threads) so slurmd
    # registers without a mismatch.
    cpus=$(sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//' <<<"$hw")
  fi
  cat >"$DIR/slurm.conf" <<EOF
# Generated by scripts/slurm/cluster.sh for a throwaway test cluster.
ClusterName=dapotest
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/run/munge.sock
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/plugstack.conf
# No cgroups: containers rarely delegate them.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
# One CPU per array task by default; memory is not a consumable.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No slurmdbd: sacct does not work. Finished jobs stay visible to
# "scontrol show job" for MinJobAge seconds, and every finished job (or array
# task) is appended as one line to the jobcomp file.
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=3600
# DependencyParameters is left at Slurm's default, as on most real clusters:
# a job whose afterok dependency failed stays PENDING with reason
# DependencyNeverSatisfied unless it was submitted with
# --kill-on-invalid-dep=yes (then it ends CANCELLED).
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1,batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=5
InactiveLimit=0
KillWait=2
Waittime=0
MailProg=/bin/true
$overrides
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE $cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$DIR/plugstack.conf"  # do not pick up /etc/slurm/plugstack.conf.d
}

# launch NAME COMMAND...: start a foreground daemon in its own session with
# no inherited stdio, and record its pid.
launch() {
  local name=$1; shift
  env "$MARKER=$DIR" setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  local pid=$! i
  echo "$name $pid" >>"$DIR/pids"
  # $! is first a subshell, then env, then setsid; wait for the final exec so
  # that alive() (which checks the process name) sees the daemon.
  for i in $(seq 50); do
    alive "$pid" "$name" && return 0
    alive "$pid" "" || return 0  # already exited; the caller's wait reports it
    sleep 0.1
  done
}

node_idle() {
  local st
  st=$(SLURM_CONF="$DIR/slurm.conf" sinfo -h -n "$NODE" -o %T 2>/dev/null) || return 1
  [ "$st" = idle ]
}

munge_ok() {
  munge -S "$DIR/run/munge.sock" -n </dev/null | unmunge -S "$DIR/run/munge.sock" >/dev/null
}

start_failed() {
  log "start failed; logs follow"
  show_logs
  cmd_stop >/dev/null 2>&1 || true
  exit 1
}

# start_daemons: one attempt with the ports in the config; returns 1 on failure.
start_daemons() {
  : >"$DIR/pids"
  launch munged munged --foreground --force -S "$DIR/run/munge.sock" \
    --key-file "$DIR/munge/munge.key" --pid-file "$DIR/run/munged.pid" \
    --log-file "$DIR/log/munged.log" --seed-file "$DIR/munge/munged.seed"
  wait_for 10 munged "munged to answer" munge_ok || return 1
  launch slurmctld slurmctld -D -f "$DIR/slurm.conf"
  wait_for 15 slurmctld "slurmctld to answer" scontrol ping || return 1
  launch slurmd slurmd -D -f "$DIR/slurm.conf" -N "$NODE"
  wait_for "${SLURM_TEST_TIMEOUT:-30}" slurmd "node $NODE to be idle" node_idle || return 1
}

cmd_start() {
  for b in munged munge unmunge slurmctld slurmd sinfo sbatch squeue scontrol scancel setsid; do
    command -v "$b" >/dev/null || die "$b not found; run: $0 install"
  done
  mkdir -p "$DIR"
  if [ -f "$DIR/pids" ]; then
    local name pid
    while read -r name pid; do
      alive "$pid" "$name" && die "a cluster is already running in $DIR ($name pid $pid); stop it first"
    done <"$DIR/pids"
    rm -f "$DIR/pids"
  fi
  local sock=$DIR/run/munge.sock
  [ ${#sock} -lt 100 ] || die "DIR is too long for a unix socket path ($sock)"

  local t0=$SECONDS attempt
  mkdir -p "$DIR/run" "$DIR/munge" "$DIR/state" "$DIR/spool/$NODE" "$DIR/log"
  # munged wants its socket directory (and DIR) world-searchable and its key
  # private to its owner.
  chmod 755 "$DIR" "$DIR/run"
  chmod 700 "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
  fi
  chmod 400 "$DIR/munge/munge.key"
  export SLURM_CONF=$DIR/slurm.conf
  for attempt in 1 2 3; do
    pick_ports
    write_conf
    start_daemons && break
    # Randomly picked ports can be taken between the check and the bind
    # (another cluster starting at the same moment): try another pair.
    if [ -z "${SLURM_TEST_PORT:-}" ] && [ $attempt -lt 3 ] &&
      grep -qs 'Address already in use' "$DIR/log/slurmctld.out" "$DIR/log/slurmd.out"; then
      log "port $CTLD_PORT or $SLURMD_PORT already in use; retrying with other ports"
      cmd_stop >/dev/null 2>&1 || true
      rm -f "$DIR/log/slurmctld.out" "$DIR/log/slurmd.out"
      continue
    fi
    start_failed
  done
  log "cluster up in $((SECONDS - t0))s (ports $CTLD_PORT/$SLURMD_PORT, pids: $(awk '{printf "%s=%s ", $1, $2}' "$DIR/pids"))"
  cmd_env
}

cmd_env() {
  echo "export SLURM_CONF=$DIR/slurm.conf"
}

# ---------------------------------------------------------------- stop

# stop_pids GRACE NAME:PID...: TERM them all, wait up to GRACE seconds, then
# KILL whatever is left (slurmstepd, for one, ignores TERM). A pid whose
# process name is no longer NAME is left alone: it was reused.
stop_pids() {
  local grace=$1 np left i; shift
  left=()
  for np in "$@"; do
    alive "${np#*:}" "${np%%:*}" || continue
    kill -TERM "${np#*:}" 2>/dev/null || true
    left+=("$np")
  done
  for sig in KILL ""; do
    for i in $(seq $((grace * 5))); do
      local still=()
      for np in ${left[@]+"${left[@]}"}; do
        alive "${np#*:}" "${np%%:*}" && still+=("$np")
      done
      left=(${still[@]+"${still[@]}"})
      [ ${#left[@]} -eq 0 ] && return 0
      sleep 0.2
    done
    [ -n "$sig" ] || break
    for np in "${left[@]}"; do
      log "${np%%:*} (pid ${np#*:}) still running after TERM; sending KILL"
      kill -KILL "${np#*:}" 2>/dev/null || true
    done
    grace=5
  done
  log "still alive after KILL: ${left[*]}"
  return 1
}

# Leftover job steps: slurmstepd (and slurmscriptd) inherit the marker from
# the daemons; batch scripts carry the submitter's SLURM_CONF plus a
# SLURM_JOB_ID. The caller (which may export the same SLURM_CONF) has no
# SLURM_JOB_ID; the daemons recorded in DIR/pids are stopped separately.
strays() {
  local f p recorded
  recorded=" $(awk '{printf "%s ", $2}' "$DIR/pids") $$ "
  {
    grep -lzxF "$MARKER=$DIR" /proc/[0-9]*/environ 2>/dev/null || true
    grep -lzxF "SLURM_CONF=$DIR/slurm.conf" /proc/[0-9]*/environ 2>/dev/null |
      while read -r f; do
        grep -qz '^SLURM_JOB_ID=' "$f" 2>/dev/null && echo "$f"
      done || true
  } | while read -r f; do
    p=${f#/proc/}; p=${p%/environ}
    case $recorded in *" $p "*) continue ;; esac
    alive "$p" "" && echo "$p"
  done | sort -un
}

cmd_stop() {
  [ -f "$DIR/pids" ] || { log "nothing recorded in $DIR/pids; nothing to stop"; return 0; }
  local ctld slurmd munged rc=0 i
  ctld=$(pid_of "$DIR" slurmctld)
  slurmd=$(pid_of "$DIR" slurmd)
  munged=$(pid_of "$DIR" munged)
  # Cancel jobs first so slurmstepd ends their processes cleanly.
  if alive "$ctld" slurmctld && alive "$slurmd" slurmd; then
    export SLURM_CONF=$DIR/slurm.conf
    local jobs
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ') || jobs=""
    if [ -n "${jobs// /}" ]; then
      # shellcheck disable=SC2086
      timeout 10 scancel $jobs 2>/dev/null || true
      # squeue lists pending, running and completing jobs by default.
      for i in $(seq 50); do
        [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null | head -n 1)" ] && break
        sleep 0.2
      done
    fi
  fi
  stop_pids 10 "slurmd:$slurmd" "slurmctld:$ctld" || rc=1
  local p name strays=()
  for p in $(strays); do
    name=$(awk '{print $2}' "/proc/$p/stat" 2>/dev/null | tr -d '()') || continue
    log "stopping leftover $name (pid $p)"
    strays+=("$name:$p")
  done
  [ ${#strays[@]} -eq 0 ] || stop_pids 2 "${strays[@]}" || rc=1
  stop_pids 10 "munged:$munged" || rc=1
  return $rc
}

# ---------------------------------------------------------------- status

cmd_status() {
  [ -f "$DIR/pids" ] || { echo "no cluster recorded in $DIR"; return 3; }
  local name pid up=0
  for name in munged slurmctld slurmd; do
    pid=$(pid_of "$DIR" "$name")
    if alive "$pid" "$name"; then
      echo "$name pid $pid running"; up=$((up + 1))
    else
      echo "$name ${pid:+pid $pid }not running"
    fi
  done
  if alive "$(pid_of "$DIR" slurmctld)" slurmctld; then
    SLURM_CONF=$DIR/slurm.conf sinfo || true
  fi
  [ $up -eq 3 ]
}

# ---------------------------------------------------------------- main

cmd=${1:-}
case $cmd in
  install) cmd_install ;;
  start | stop | status | env)
    need_dir "${2:-}"
    DIR=${2%/}
    "cmd_$cmd"
    ;;
  *)
    sed -n '2,14s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
