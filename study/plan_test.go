package study

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validPlan is a small correct plan; the table cases below break one
// line of it or add some.
const validPlan = `study: t
models:
  dapo: {tiny: dapo}
  winclip: {tiny: winclip}
  anomalyclip: {tiny: anomalyclip}
methods:
  - {name: DAPO, scheme: dapo}
  - {name: WinCLIP, scheme: winclip}
  - {name: AnomalyCLIP, scheme: anomalyclip}
train:
  mvtec: {dataset: mvtec}
  visa: {dataset: visa, methods: [AnomalyCLIP]}
evaluate:
  - {prompts: mvtec, datasets: [visa, mpdd]}
  - {prompts: visa, datasets: [mvtec], methods: [AnomalyCLIP]}
`

func writePlan(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParsePlanValid(t *testing.T) {
	p, err := ParsePlan(writePlan(t, "plan.yaml", validPlan))
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, r := range p.Rows() {
		labels = append(labels, r.Label)
		if want := r.Scheme != "winclip"; r.Trained != want {
			t.Errorf("%s: trained %v, want %v", r.Label, r.Trained, want)
		}
	}
	if got := strings.Join(labels, ","); got != "DAPO,WinCLIP,AnomalyCLIP" {
		t.Errorf("rows %s", got)
	}
	if p.ReferenceRow() != "DAPO" {
		t.Errorf("reference %q, want the first row", p.ReferenceRow())
	}
	if len(p.Tables) != len(DefaultTables()) {
		t.Errorf("%d tables, want the %d default ones", len(p.Tables), len(DefaultTables()))
	}
}

// TestParsePlanErrors checks that every kind of bad plan fails before
// anything runs, with the file, the line and the key.
func TestParsePlanErrors(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(validPlan, old) {
			t.Fatalf("the valid plan has no %q", old)
		}
		return strings.Replace(validPlan, old, new, 1)
	}
	cases := []struct {
		name, plan string
		want       string // "LINE: key: message part"
	}{
		{"unknown scheme", replace("scheme: winclip}", "scheme: winclipp}"),
			`:8: methods[1].scheme: unknown scheme "winclipp"; valid: `},
		{"unknown variant", replace("{name: DAPO, scheme: dapo}", "{name: DAPO, scheme: dapo, variants: [dapo, dapo/e2]}"),
			`:7: methods[0].variants: unknown variant "dapo/e2" of dapo`},
		{"unknown dataset to train on", replace("mvtec: {dataset: mvtec}", "mvtec: {dataset: mvtek}"),
			`:11: train.mvtec.dataset: unknown dataset "mvtek"`},
		{"unknown dataset to test on", replace("datasets: [visa, mpdd]", "datasets: [visa, mdpp]"),
			`:14: evaluate[0].datasets: unknown dataset "mdpp"`},
		{"unknown key", replace("  visa: {dataset: visa, methods: [AnomalyCLIP]}", "  visa: {dataset: visa, method: [AnomalyCLIP]}"),
			`:12: train.visa.method: unknown key; valid: dataset, init, methods`},
		{"unknown top-level key", validPlan + "tabels: []\n",
			`:16: tabels: unknown key; valid: extends, study`},
		{"prompts no job trains", replace("{prompts: visa, datasets: [mvtec], methods: [AnomalyCLIP]}", "{prompts: visa, datasets: [mvtec]}"),
			`:15: evaluate[1].prompts: DAPO needs prompts that train entry "visa" (line 12) does not train`},
		{"prompts of no train entry", replace("{prompts: mvtec, datasets: [visa, mpdd]}", "{prompts: mvtc, datasets: [visa, mpdd]}"),
			`:14: evaluate[0].prompts: no train entry "mvtc" trains prompts`},
		{"trained method without prompts", replace("{prompts: mvtec, datasets: [visa, mpdd]}", "{datasets: [visa, mpdd]}"),
			`:14: evaluate[0].prompts: DAPO learns its prompts: name the train entry`},
		{"a fine-tune cycle", replace("  mvtec: {dataset: mvtec}\n  visa: {dataset: visa, methods: [AnomalyCLIP]}",
			"  mvtec: {dataset: mvtec, init: visa, methods: [AnomalyCLIP]}\n  visa: {dataset: visa, methods: [AnomalyCLIP], init: mvtec}\n  base: {dataset: mvtec, methods: [DAPO]}"),
			`:11: train.mvtec.init: cycle: mvtec → visa → mvtec`},
		{"absolute path", replace("dapo: {tiny: dapo}", "dapo: {dir: /models/dapo}"),
			`:3: models.dapo.dir: "/models/dapo" is outside the study folder`},
		{"path leaving the study folder", replace("dapo: {tiny: dapo}", "dapo: {weights: ../w.safetensors, arch: ViT-L-14-336, variant: dapo}"),
			`:3: models.dapo.weights: "../w.safetensors" leaves the study folder`},
		{"prompts file outside", replace("{name: WinCLIP, scheme: winclip}", "{name: WinCLIP, scheme: winclip, prompts: /tmp/p.safetensors}"),
			`:8: methods[1].prompts: "/tmp/p.safetensors" is outside the study folder`},
		{"dapo trains on mvtec only", replace("{dataset: visa, methods: [AnomalyCLIP]}", "{dataset: visa}"),
			`:12: train.visa: DAPO cannot learn its prompts on visa`},
		{"a cell twice", replace("{prompts: visa, datasets: [mvtec], methods: [AnomalyCLIP]}", "{prompts: visa, datasets: [visa], methods: [AnomalyCLIP]}"),
			`:15: evaluate[1]: AnomalyCLIP is evaluated on visa twice (also by the entry at line 14)`},
		{"unknown model", replace("{name: DAPO, scheme: dapo}", "{name: DAPO, scheme: dapo, model: dappo}"),
			`:7: methods[0].model: no model "dappo" in models`},
		{"two methods of one name", replace("{name: WinCLIP, scheme: winclip}", "{name: DAPO, scheme: winclip}"),
			`:8: methods[1].name: "DAPO" is also the name of the method at line 7`},
		{"a key twice", replace("  winclip: {tiny: winclip}", "  winclip: {tiny: winclip, tiny: dapo}"),
			`:4: models.winclip.tiny: given twice (first at line 4)`},
		{"bad table metric", validPlan + "tables:\n  - {kind: significance, metrics: [pixel_auroc]}\n",
			`:17: tables[0].metrics: "pixel_auroc" cannot be in a significance table`},
		{"bad table kind", validPlan + "tables:\n  - {kind: heatmap}\n",
			`:17: tables[0].kind: "heatmap"; valid: datasets, defect-types, significance`},
		{"recipe of a training-free method", replace("{name: WinCLIP, scheme: winclip}", "{name: WinCLIP, scheme: winclip, recipe: {epochs: 2}}"),
			`:8: methods[1].recipe: WinCLIP does not train here`},
		{"bad seed", validPlan + "seeds: [1, -2]\n",
			`:16: seeds[1]: want a whole number ≥ 0, got "-2"`},
		{"not a mapping", "- a\n- b\n", `:1: a plan is a mapping of keys`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writePlan(t, "plan.yaml", c.plan)
			_, err := ParsePlan(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrPlan) {
				t.Errorf("error %v does not match ErrPlan", err)
			}
			if !strings.Contains(err.Error(), path+c.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s%s", err, path, c.want)
			}
		})
	}
}

// TestParsePlanExtends checks that a plan inherits the keys it does not
// set, and that an error in the plan it extends names that file.
func TestParsePlanExtends(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, []byte(validPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "child.yaml")
	if err := os.WriteFile(child, []byte("extends: base.yaml\nstudy: child\ntiny_models: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ParsePlan(child)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "child" || len(p.Methods) != 3 || p.Models[0].Seed != 3 {
		t.Errorf("name %q, %d methods, model seed %d", p.Name, len(p.Methods), p.Models[0].Seed)
	}
	bad := strings.Replace(validPlan, "scheme: dapo}", "scheme: dapp}", 1)
	if err := os.WriteFile(base, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ParsePlan(child)
	if err == nil || !strings.Contains(err.Error(), base+":7: methods[0].scheme") {
		t.Errorf("error %v, want it at %s:7", err, base)
	}
}
