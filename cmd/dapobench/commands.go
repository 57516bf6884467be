package main

import "github.com/dapobench/dapobench/internal/cli"

// commands is the explicit registry of subcommands, in the order the usage
// text lists them.
func commands() []cli.Command {
	return []cli.Command{
		{Name: "datasets scan", Summary: "validate a dataset tree and count its samples", Run: cmdDatasetsScan},
		{Name: "datasets meta", Summary: "write the CLIP-style meta.json of a dataset tree", Run: cmdDatasetsMeta},
		{Name: "fixtures gen", Summary: "write synthetic copies of every benchmark in its real layout", Run: cmdFixturesGen},
		{Name: "run", Summary: "evaluate a prompt scheme on a dataset (results.json, manifest.json)", Run: cmdRun},
		{Name: "train", Summary: "learn the prompts of dapo or anomalyclip with the official recipe (epoch checkpoints, resume, loss plot)", Run: cmdTrain},
		{Name: "report", Summary: "write RESULTS.md with paper-style tables and figures from run directories", Run: cmdReport},
		{Name: "compare", Summary: "compare two runs per category: differences, paired bootstrap intervals, DeLong's test", Run: cmdCompare},
		{Name: "check", Summary: "check a run's results against golden results within a tolerance (exit 1 when a number moved)", Run: cmdCheck},
		{Name: "eval", Summary: "evaluate external anomaly maps (TIFF, .npy, PNG) on a dataset (results.json)", Run: cmdEval},
		{Name: "study plan", Summary: "check a study plan (protocol, ablation grid) and write its job graph to a study folder", Run: cmdStudyPlan},
		{Name: "study run", Summary: "run a study's jobs that are not done, in parallel or one of them (a cluster task)", Run: cmdStudyRun},
		{Name: "study status", Summary: "show which jobs of a study are done, running, failed or waiting", Run: cmdStudyStatus},
		{Name: "study report", Summary: "write a study's RESULTS.md: methods × datasets, seen/novel defect types, significance", Run: cmdStudyReport},
		{Name: "study slurm", Summary: "write a study's sbatch scripts (one job array per stage) and optionally submit them", Run: cmdStudySlurm},
		{Name: "study k8s", Summary: "write a study's Kubernetes Indexed Jobs (one per stage)", Run: cmdStudyK8s},
		{Name: "demo", Summary: "the main job on the embedded default (synthetic fixtures)", Run: cmdDemo},
		{Name: "models build", Summary: "build a model directory (ONNX towers, token embeddings) from CLIP weights", Run: runModelsBuild},
		{Name: "models tiny", Summary: "build a tiny seeded model directory for tests and demos", Run: runModelsTiny},
		{Name: "models run", Summary: "run a model directory's towers on images and texts, writing .npy outputs", Run: runModelsRun},
		{Name: "models bench", Summary: "time a model directory's image tower: images/s, peak memory, share of the device's peak", Run: runModelsBench},
		{Name: "models import", Summary: "import learned prompts from a DAPO or AnomalyCLIP training checkpoint (.pth) into safetensors", Run: runModelsImport},
	}
}
