// Package study runs protocols and grids of many trainings and
// evaluations as one unit: a plan file (YAML, docs/cluster.md#study-plan)
// describes the models, the methods with their variants, which datasets
// prompts are trained on and which datasets they are tested on, and the
// tables to produce. Plan expands it into a job graph with one stable id
// and number per job (model builds, trainings, evaluations, per-category
// evaluation parts and their merges, the report), written to a study
// folder; Run executes jobs locally in parallel or one at a time (what a
// Slurm array task or a Kubernetes indexed pod does), skipping jobs whose
// recorded fingerprint matches; Report writes the paper-layout tables.
//
// Every file a job writes lies in a folder only that job writes (or, for
// the per-category parts of one evaluation, in files named after the
// category), and every file is written atomically, so that jobs can share
// a study folder on a network filesystem (docs/cluster.md#study-shared-folder).
package study
