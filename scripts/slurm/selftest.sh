#!/usr/bin/env bash
# Self-test of cluster.sh: starts a real single-node Slurm cluster in a temp
# folder and drives it the way a two-stage study will:
#
#   1. stage 1 = a job array of 4 tasks (each writes one file), stage 2 = a job
#      array of 4 tasks with --dependency=afterok:<stage 1>, reading stage 1's
#      files; wait; check every task COMPLETED and the files' contents;
#   2. the same study again in a fresh folder, but one stage-1 task is
#      cancelled mid-run (scancel JOB_TASK): the task ends CANCELLED, stage 2
#      is cancelled for its unmet dependency; resubmit just that task and
#      stage 2; the final files equal those of run 1 byte for byte;
#   3. a task that exits 3 is reported FAILED with ExitCode=3:0, both by
#      "scontrol show job -o" and by the jobcomp file.
#
# The cluster is stopped on every exit path (trap). Installs slurm-wlm and
# munge first when missing (root). KEEP=1 keeps the temp folder.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cluster=$here/cluster.sh
t_start=$SECONDS

say() { echo "selftest: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

"$cluster" install

D=$(mktemp -d "${TMPDIR:-/tmp}/slurm-selftest.XXXXXX")
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  "$cluster" stop "$D" || { say "stopping the cluster failed"; rc=1; }
  if [ $rc -ne 0 ] || [ -n "${KEEP:-}" ]; then
    say "kept $D (logs in $D/log)"
  else
    rm -rf "$D"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eval "$("$cluster" start "$D")"   # exports SLURM_CONF
say "cluster started after $((SECONDS - t_start))s"

# ---- the two stages, as batch scripts. They get the submitter's environment
# (sbatch exports everything by default), hence STUDY, SLURM_CONF and PATH.
cat >"$D/stage1.sh" <<'EOF'
#!/bin/bash
set -euo pipefail
i=$SLURM_ARRAY_TASK_ID
touch "$STUDY/s1/$i.started"
if [ "$i" = "${SLOW_TASK:-none}" ]; then sleep 60; else sleep 1; fi
# write-then-rename: a killed task leaves no result behind
echo "stage1 task $i value $((i * i + 7))" >"$STUDY/s1/$i.tmp"
mv "$STUDY/s1/$i.tmp" "$STUDY/s1/$i.txt"
EOF
cat >"$D/stage2.sh" <<'EOF'
#!/bin/bash
set -euo pipefail
i=$SLURM_ARRAY_TASK_ID
in=$(cat "$STUDY/s1/$i.txt")
echo "stage2 task $i read [$in] sum $(( ${in##* } + 1 ))" >"$STUDY/s2/$i.tmp"
mv "$STUDY/s2/$i.tmp" "$STUDY/s2/$i.txt"
EOF
chmod +x "$D/stage1.sh" "$D/stage2.sh"

new_study() { # new_study NAME: folders must exist before sbatch (-o/-e too)
  STUDY=$D/$1
  mkdir -p "$STUDY/s1" "$STUDY/s2" "$STUDY/logs"
  export STUDY
}

# submit ARRAY SCRIPT [sbatch options...] -> prints the array job id
submit() {
  local array=$1 script=$2; shift 2
  sbatch --parsable --array="$array" --job-name="$(basename "$script" .sh)" \
    --output="$STUDY/logs/%x-%A_%a.out" --chdir="$STUDY" "$@" "$script" | cut -d';' -f1
}

# wait_jobs SECONDS ID...: until squeue lists none of them (pending, running
# or completing). Finished jobs stay in "scontrol show job" for MinJobAge.
wait_jobs() {
  local secs=$1 ids; shift
  ids=$(IFS=,; echo "$*")
  local deadline=$((SECONDS + secs))
  while [ -n "$(squeue -h -j "$ids" -o %i)" ]; do
    [ $SECONDS -lt $deadline ] || { squeue -j "$ids" >&2; fail "jobs $ids not done after ${secs}s"; }
    sleep 0.3
  done
}

# states ID: one "TASK STATE EXITCODE" line per array task (a task range for
# a never-started remainder), from scontrol show job -o. EXITCODE is
# status:signal; for CANCELLED it is "-" since the signal (15 or 9) depends
# on timing.
states() {
  scontrol show job -o "$1" |
    sed -n 's/.*ArrayTaskId=\([^ ]*\) .*JobState=\([A-Z_]*\) .*ExitCode=\([0-9:]*\) .*/\1 \2 \3/p' |
    awk '$2 == "CANCELLED" { $3 = "-" } { print }' | sort -n
}

expect_states() { # expect_states ID "EXPECTED"
  local got
  got=$(states "$1")
  [ "$got" = "$2" ] || fail "job $1: expected states
$2
got
$got"
}

all_completed=$'0 COMPLETED 0:0\n1 COMPLETED 0:0\n2 COMPLETED 0:0\n3 COMPLETED 0:0'

# ---- 1: a clean two-stage run
t=$SECONDS
new_study run1
j1=$(submit 0-3 "$D/stage1.sh")
j2=$(submit 0-3 "$D/stage2.sh" --dependency=afterok:"$j1")
[[ $j1 =~ ^[0-9]+$ && $j2 =~ ^[0-9]+$ ]] || fail "sbatch --parsable gave '$j1' and '$j2'"
wait_jobs 60 "$j1" "$j2"
expect_states "$j1" "$all_completed"
expect_states "$j2" "$all_completed"
for i in 0 1 2 3; do
  want="stage2 task $i read [stage1 task $i value $((i * i + 7))] sum $((i * i + 8))"
  [ "$(cat "$STUDY/s2/$i.txt")" = "$want" ] || fail "run1 s2/$i.txt: $(cat "$STUDY/s2/$i.txt")"
done
say "1: two stages of 4 tasks completed in $((SECONDS - t))s"

# ---- 2: cancel one stage-1 task mid-run, resubmit it
t=$SECONDS
new_study run2
j1=$(SLOW_TASK=2 submit 0-3 "$D/stage1.sh")
j2=$(submit 0-3 "$D/stage2.sh" --dependency=afterok:"$j1" --kill-on-invalid-dep=yes)
# Wait until the task is in its script (RUNNING in squeue comes a little
# before the script starts), then cancel it.
deadline=$((SECONDS + 30))
until [ -e "$STUDY/s1/2.started" ]; do
  [ $SECONDS -lt $deadline ] || fail "task ${j1}_2 never started"
  sleep 0.2
done
[ "$(squeue -h -j "${j1}_2" -o %T)" = RUNNING ] || fail "task ${j1}_2 is not RUNNING"
scancel "${j1}_2"
wait_jobs 60 "$j1" "$j2"
expect_states "$j1" $'0 COMPLETED 0:0\n1 COMPLETED 0:0\n2 CANCELLED -\n3 COMPLETED 0:0'
# --kill-on-invalid-dep=yes: stage 2 is cancelled, not left pending forever.
got=$(states "$j2" | awk '{print $2}' | sort -u)
[ "$got" = CANCELLED ] || fail "stage 2 after the cancelled task: $got"
[ ! -e "$STUDY/s1/2.txt" ] || fail "the cancelled task left a result"
ls "$STUDY/s2" | grep -q . && fail "stage 2 ran despite the cancelled dependency"
# resubmit: only the missing stage-1 task, then stage 2 after it
j1b=$(submit 2 "$D/stage1.sh")
j2b=$(submit 0-3 "$D/stage2.sh" --dependency=afterok:"$j1b")
wait_jobs 60 "$j1b" "$j2b"
expect_states "$j1b" "2 COMPLETED 0:0"
expect_states "$j2b" "$all_completed"
for i in 0 1 2 3; do
  cmp -s "$D/run1/s2/$i.txt" "$STUDY/s2/$i.txt" || fail "run2 s2/$i.txt differs from run1"
  cmp -s "$D/run1/s1/$i.txt" "$STUDY/s1/$i.txt" || fail "run2 s1/$i.txt differs from run1"
done
say "2: cancelled ${j1}_2 mid-run, resubmitted it, results identical ($((SECONDS - t))s)"

# ---- 3: a failing task is visible as FAILED with its exit code
new_study run3
j3=$(submit 0-1 /dev/stdin <<'EOF'
#!/bin/bash
[ "$SLURM_ARRAY_TASK_ID" = 1 ] && exit 3
exit 0
EOF
)
wait_jobs 30 "$j3"
expect_states "$j3" $'0 COMPLETED 0:0\n1 FAILED 3:0'
grep -q "ArrayJobId=$j3 ArrayTaskId=1 .*JobState=FAILED" "$D/log/jobcomp.txt" ||
  grep -q "JobState=FAILED .*ArrayJobId=$j3 ArrayTaskId=1 " "$D/log/jobcomp.txt" ||
  fail "jobcomp file has no FAILED line for ${j3}_1"
say "3: a task exiting 3 shows as FAILED 3:0"

say "PASS in $((SECONDS - t_start))s (stopping the cluster)"
