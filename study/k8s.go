package study

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/dapobench/dapobench/internal/atomicfile"
)

// K8sDir holds the Kubernetes manifests.
const K8sDir = "k8s"

// K8sOptions describe the pods of the Kubernetes target
// (docs/cluster.md#k8s-indexed-jobs).
type K8sOptions struct {
	Image string // a container image with dapobench and onnxruntime
	// PVC is a PersistentVolumeClaim holding the study folder; it is
	// mounted at the study folder's absolute path, so that study.json's
	// paths hold inside the pods.
	PVC         string
	Namespace   string
	GPUsPerJob  int // nvidia.com/gpu limit of pods that run models
	Parallelism int // pods at once per stage (0: all)
	Binary      string
}

// Kubernetes objects, as much of them as the manifests use.
type k8sJob struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
	Spec       struct {
		CompletionMode       string `yaml:"completionMode"`
		Completions          int    `yaml:"completions"`
		Parallelism          int    `yaml:"parallelism"`
		BackoffLimitPerIndex int    `yaml:"backoffLimitPerIndex"`
		MaxFailedIndexes     int    `yaml:"maxFailedIndexes"`
		Template             struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				RestartPolicy string         `yaml:"restartPolicy"`
				Containers    []k8sContainer `yaml:"containers"`
				Volumes       []k8sVolume    `yaml:"volumes,omitempty"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sMeta struct {
	Name      string            `yaml:"name,omitempty"`
	Namespace string            `yaml:"namespace,omitempty"`
	Labels    map[string]string `yaml:"labels"`
}

type k8sContainer struct {
	Name      string   `yaml:"name"`
	Image     string   `yaml:"image"`
	Command   []string `yaml:"command"`
	Resources struct {
		Limits map[string]string `yaml:"limits,omitempty"`
	} `yaml:"resources,omitempty"`
	VolumeMounts []k8sMount `yaml:"volumeMounts,omitempty"`
}

type k8sMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
}

type k8sVolume struct {
	Name string `yaml:"name"`
	PVC  struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

// WriteK8s writes one Indexed Job per stage into DIR/k8s: pod i of a
// stage runs `dapobench study run DIR --job N` with N the stage's first
// job number plus JOB_COMPLETION_INDEX (a stage's jobs are numbered
// consecutively). Kubernetes Jobs have no dependencies, so apply.sh
// applies the stages in order and waits for each to complete.
func WriteK8s(g *Graph, o K8sOptions) ([]string, error) {
	if o.Image == "" {
		return nil, fmt.Errorf("study: kubernetes: give the container image")
	}
	dir, err := filepath.Abs(g.dir)
	if err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	bin := o.Binary
	if bin == "" {
		bin = "dapobench"
	}
	kdir := filepath.Join(dir, K8sDir)
	var files []string
	var apply strings.Builder
	apply.WriteString("#!/bin/bash\n# Applies the study's stages in order, each after the previous one completed.\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\n")
	for i, st := range g.Stages {
		first := st.Jobs[0]
		name := fmt.Sprintf("dapobench-%s-%d-%s", strings.ToLower(slug(g.Name)), i+1, st.Name)
		labels := map[string]string{"app.kubernetes.io/name": "dapobench", "dapobench/study": slug(g.Name), "dapobench/stage": st.Name}
		var j k8sJob
		j.APIVersion, j.Kind = "batch/v1", "Job"
		j.Metadata = k8sMeta{Name: name, Namespace: o.Namespace, Labels: labels}
		j.Spec.CompletionMode = "Indexed"
		j.Spec.Completions = len(st.Jobs)
		j.Spec.Parallelism = len(st.Jobs)
		if o.Parallelism > 0 {
			j.Spec.Parallelism = min(o.Parallelism, len(st.Jobs))
		}
		// A failed pod is retried once; a retry resumes from the job's
		// records like a resubmitted Slurm task.
		j.Spec.BackoffLimitPerIndex = 1
		j.Spec.MaxFailedIndexes = len(st.Jobs)
		j.Spec.Template.Metadata = k8sMeta{Labels: labels}
		ps := &j.Spec.Template.Spec
		ps.RestartPolicy = "Never"
		device := "cpu"
		c := k8sContainer{Name: "dapobench", Image: o.Image}
		for _, n := range st.Jobs {
			if k := g.Jobs[n].Kind; k == KindModel || k == KindTrain || k == KindEval {
				device = "auto"
			}
		}
		if device == "auto" && o.GPUsPerJob > 0 {
			c.Resources.Limits = map[string]string{"nvidia.com/gpu": fmt.Sprint(o.GPUsPerJob)}
		}
		c.Command = []string{"sh", "-c", fmt.Sprintf("exec %s study run %s --job \"$((JOB_COMPLETION_INDEX + %d))\" --device %s", shellQuote(bin), shellQuote(dir), first, device)}
		if o.PVC != "" {
			c.VolumeMounts = []k8sMount{{Name: "study", MountPath: dir}}
			v := k8sVolume{Name: "study"}
			v.PVC.ClaimName = o.PVC
			ps.Volumes = []k8sVolume{v}
		}
		ps.Containers = []k8sContainer{c}
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "# dapobench study %s, stage %d of %d (%s): jobs %d-%d, pod i runs job %d + i (JOB_COMPLETION_INDEX).\n",
			g.Name, i+1, len(g.Stages), st.Name, first, st.Jobs[len(st.Jobs)-1], first)
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(j); err != nil {
			return nil, fmt.Errorf("study: kubernetes manifest: %w", err)
		}
		enc.Close()
		file := filepath.Join(kdir, fmt.Sprintf("%d-%s.yaml", i+1, st.Name))
		if err := mkdirWrite(file, buf.Bytes()); err != nil {
			return nil, err
		}
		files = append(files, file)
		ns := ""
		if o.Namespace != "" {
			ns = " -n " + shellQuote(o.Namespace)
		}
		fmt.Fprintf(&apply, "kubectl%s apply -f %s\nkubectl%s wait --for=condition=complete --timeout=-1s job/%s\n", ns, filepath.Base(file), ns, name)
	}
	if err := mkdirWrite(filepath.Join(kdir, "apply.sh"), []byte(apply.String())); err != nil {
		return nil, err
	}
	return files, nil
}

func mkdirWrite(p string, b []byte) error {
	if err := mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, b); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return nil
}
