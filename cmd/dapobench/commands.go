package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// command is one subcommand. Its name has one or two words ("eval",
// "datasets scan"); run parses its own flags.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the explicit registry of subcommands, in the order the usage
// text lists them.
func commands() []command {
	return []command{
		{"datasets scan", "validate a dataset tree and count its samples", cmdDatasetsScan},
		{"datasets meta", "write the CLIP-style meta.json of a dataset tree", cmdDatasetsMeta},
		{"fixtures gen", "write synthetic copies of every benchmark in its real layout", cmdFixturesGen},
		{"run", "evaluate a prompt scheme on a dataset (results.json, manifest.json)", cmdRun},
		{"train", "learn the prompts of dapo or anomalyclip with the official recipe (epoch checkpoints, resume, loss plot)", cmdTrain},
		{"report", "write RESULTS.md with paper-style tables and figures from run directories", cmdReport},
		{"compare", "compare two runs per category: differences, paired bootstrap intervals, DeLong's test", cmdCompare},
		{"check", "check a run's results against golden results within a tolerance (exit 1 when a number moved)", cmdCheck},
		{"eval", "evaluate external anomaly maps (TIFF, .npy, PNG) on a dataset (results.json)", cmdEval},
		{"study plan", "check a study plan (protocol, ablation grid) and write its job graph to a study folder", cmdStudyPlan},
		{"study run", "run a study's jobs that are not done, in parallel or one of them (a cluster task)", cmdStudyRun},
		{"study status", "show which jobs of a study are done, running, failed or waiting", cmdStudyStatus},
		{"study report", "write a study's RESULTS.md: methods × datasets, seen/novel defect types, significance", cmdStudyReport},
		{"study slurm", "write a study's sbatch scripts (one job array per stage) and optionally submit them", cmdStudySlurm},
		{"study k8s", "write a study's Kubernetes Indexed Jobs (one per stage)", cmdStudyK8s},
		{"demo", "the main job on the embedded default (synthetic fixtures)", cmdDemo},
		{"models build", "build a model directory (ONNX towers, token embeddings) from CLIP weights", runModelsBuild},
		{"models tiny", "build a tiny seeded model directory for tests and demos", runModelsTiny},
		{"models run", "run a model directory's towers on images and texts, writing .npy outputs", runModelsRun},
		{"models bench", "time a model directory's image tower: images/s, peak memory, share of the device's peak", runModelsBench},
		{"models import", "import learned prompts from a DAPO or AnomalyCLIP training checkpoint (.pth) into safetensors", runModelsImport},
	}
}

var (
	// errUsage marks bad command-line usage (exit status 2).
	errUsage = errors.New("usage")
	// errSilent marks an error whose message the command already printed.
	errSilent = errors.New("failed")
	// errCannotCheck marks a check that could not be made (exit status 3):
	// an unreadable or missing golden file or run, not a moved metric.
	errCannotCheck = errors.New("could not check")
)

func lookup(cmds []command, args []string) (command, []string, bool) {
	for _, n := range []int{2, 1} {
		if len(args) < n {
			continue
		}
		name := strings.Join(args[:n], " ")
		for _, c := range cmds {
			if c.name == name {
				return c, args[n:], true
			}
		}
	}
	return command{}, nil, false
}

// inGroup returns the commands whose first word is group, nil if none.
func inGroup(cmds []command, group string) []command {
	var in []command
	for _, c := range cmds {
		if first, _, two := strings.Cut(c.name, " "); two && first == group {
			in = append(in, c)
		}
	}
	return in
}

func joinWords(args []string, n int) string {
	if len(args) > n {
		args = args[:n]
	}
	return strings.Join(args, " ")
}

func printUsage(w io.Writer, cmds []command) {
	if first, _, two := strings.Cut(cmds[0].name, " "); two && len(inGroup(cmds, first)) == len(cmds) {
		fmt.Fprintf(w, "usage: dapobench %s <command> [flags]\n", first)
	} else {
		fmt.Fprintln(w, "usage: dapobench <command> [flags]")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'dapobench <command> -h' for the flags of one command.")
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("dapobench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and maps flag errors to errUsage. -h returns
// flag.ErrHelp wrapped so that the exit status is 0.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected arguments %q", errUsage, fs.Name(), fs.Args())
	}
	return nil
}

// errHelp is returned when the user asked for -h; run treats it as success.
var errHelp = errors.New("help requested")

// requireFlags returns a usage error naming the first empty required flag.
func requireFlags(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f != nil && f.Value.String() == "" {
			return fmt.Errorf("%w: %s: --%s is required", errUsage, fs.Name(), n)
		}
	}
	return nil
}
