package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dapobench/dapobench/internal/atomicfile"
)

// JobsDir holds one folder per job with its records (running.json,
// done.json, failed.json) and its log; only that job writes there.
const JobsDir = "jobs"

// Record is what a job writes about one attempt.
type Record struct {
	Fingerprint string  `json:"fingerprint"`
	Host        string  `json:"host"`
	PID         int     `json:"pid"`
	SlurmJob    string  `json:"slurm_job,omitempty"` // SLURM_JOB_ID of an array task
	Started     string  `json:"started"`
	Finished    string  `json:"finished,omitempty"`
	Seconds     float64 `json:"seconds,omitempty"`
	Error       string  `json:"error,omitempty"`
}

// interruptedPrefix starts the error of a job stopped by a signal.
const interruptedPrefix = "interrupted"

// Record files.
const (
	runningFile = "running.json"
	doneFile    = "done.json"
	failedFile  = "failed.json"
	logFile     = "log.txt"
)

func (g *Graph) jobDir(j *Job) string {
	return filepath.Join(g.dir, JobsDir, filepath.FromSlash(j.ID))
}

func readRecord(p string) (*Record, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("study: %s: %w", p, err)
	}
	return &r, nil
}

func writeRecord(p string, r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, append(b, '\n')); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return nil
}

// Done reports whether a job finished with its current fingerprint.
func (g *Graph) Done(j *Job) bool {
	r, err := readRecord(filepath.Join(g.jobDir(j), doneFile))
	return err == nil && r.Fingerprint == j.Fingerprint
}

// Job states, as `study status` shows them.
const (
	StateDone        = "done"
	StateRunning     = "running"
	StateFailed      = "failed"
	StateInterrupted = "interrupted" // stopped by a signal, or its process is gone
	StateReady       = "ready"       // every dependency is done
	StateWaiting     = "waiting"     // some dependency is not done
)

// JobStatus is one job's state.
type JobStatus struct {
	Job    *Job
	State  string
	Detail string // the error, the host and pid, or what it waits for
	// Stale is set when a record of an earlier plan (another
	// fingerprint) exists: the job runs again.
	Stale bool
}

// Status reads every job's state from its records.
func Status(g *Graph) []JobStatus {
	out := make([]JobStatus, len(g.Jobs))
	host, _ := os.Hostname()
	for i, j := range g.Jobs {
		s := JobStatus{Job: j}
		dir := g.jobDir(j)
		done, _ := readRecord(filepath.Join(dir, doneFile))
		failed, _ := readRecord(filepath.Join(dir, failedFile))
		running, _ := readRecord(filepath.Join(dir, runningFile))
		switch {
		case done != nil && done.Fingerprint == j.Fingerprint:
			s.State, s.Detail = StateDone, fmt.Sprintf("%.1fs", done.Seconds)
		case running != nil && running.Fingerprint == j.Fingerprint:
			s.State, s.Detail = StateRunning, whereRunning(running)
			if running.Host == host && !alive(running.PID) {
				s.State = StateInterrupted
				s.Detail = fmt.Sprintf("started %s as pid %d, which is gone; run it again to resume", running.Started, running.PID)
			}
		case failed != nil && failed.Fingerprint == j.Fingerprint:
			s.State, s.Detail = StateFailed, failed.Error
			if strings.HasPrefix(failed.Error, interruptedPrefix) {
				s.State = StateInterrupted
				s.Detail = fmt.Sprintf("%s at %s; run it again to resume", failed.Error, failed.Finished)
			}
		default:
			s.State = StateReady
			var wait []string
			for _, d := range j.Deps {
				if out[d].State != StateDone {
					wait = append(wait, g.Jobs[d].ID)
				}
			}
			if len(wait) > 0 {
				s.State = StateWaiting
				s.Detail = "for " + strings.Join(shorten(wait, 3), ", ")
			}
		}
		s.Stale = s.State != StateDone && (done != nil || running != nil || failed != nil) &&
			!(running != nil && running.Fingerprint == j.Fingerprint) && !(failed != nil && failed.Fingerprint == j.Fingerprint)
		out[i] = s
	}
	return out
}

func shorten(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("%d more", len(s)-n))
}

func whereRunning(r *Record) string {
	s := fmt.Sprintf("on %s, pid %d, since %s", r.Host, r.PID, r.Started)
	if r.SlurmJob != "" {
		s += ", Slurm job " + r.SlurmJob
	}
	return s
}

// alive reports whether a process of this host runs (a zombie does not).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err == nil {
		// The state follows the command in parentheses.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
	}
	return true
}

// begin records that this process starts a job; it refuses when another
// live process of this host runs the same job.
func (g *Graph) begin(j *Job) (*Record, error) {
	dir := g.jobDir(j)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	host, _ := os.Hostname()
	if r, err := readRecord(filepath.Join(dir, runningFile)); err == nil && r.Host == host && r.PID != os.Getpid() && alive(r.PID) {
		return nil, fmt.Errorf("study: job %s is already running (pid %d since %s)", j.ID, r.PID, r.Started)
	}
	r := &Record{Fingerprint: j.Fingerprint, Host: host, PID: os.Getpid(), SlurmJob: slurmJobID(),
		Started: time.Now().UTC().Format(time.RFC3339)}
	if err := writeRecord(filepath.Join(dir, runningFile), r); err != nil {
		return nil, err
	}
	return r, nil
}

// previous returns the fingerprint of the job's last attempt, "" if none.
func (g *Graph) previous(j *Job) string {
	dir := g.jobDir(j)
	for _, f := range []string{doneFile, failedFile, runningFile} {
		if r, err := readRecord(filepath.Join(dir, f)); err == nil {
			return r.Fingerprint
		}
	}
	return ""
}

// end records how an attempt ended.
func (g *Graph) end(j *Job, r *Record, started time.Time, jobErr error) error {
	dir := g.jobDir(j)
	r.Finished = time.Now().UTC().Format(time.RFC3339)
	r.Seconds = time.Since(started).Seconds()
	name := doneFile
	if jobErr != nil {
		name, r.Error = failedFile, jobErr.Error()
	} else if err := os.Remove(filepath.Join(dir, failedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("study: %w", err)
	}
	if err := writeRecord(filepath.Join(dir, name), r); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, runningFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("study: %w", err)
	}
	return nil
}

func slurmJobID() string {
	if a, t := os.Getenv("SLURM_ARRAY_JOB_ID"), os.Getenv("SLURM_ARRAY_TASK_ID"); a != "" && t != "" {
		return a + "_" + t
	}
	return os.Getenv("SLURM_JOB_ID")
}

func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return nil
}

// WriteStatus prints every job's state, one line each, and the counts.
func WriteStatus(w io.Writer, g *Graph) error {
	st := Status(g)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "#\tjob\tstage\tstate\t\n")
	counts := map[string]int{}
	for _, s := range st {
		counts[s.State]++
		state := s.State
		if s.Stale {
			state += " (plan changed)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", s.Job.N, s.Job.ID, g.Stages[s.Job.Stage].Name, state, s.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, k := range []string{StateDone, StateRunning, StateFailed, StateInterrupted, StateReady, StateWaiting} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	_, err := fmt.Fprintf(w, "\nstudy %s: %d jobs: %s\n", g.Name, len(st), strings.Join(parts, ", "))
	return err
}
