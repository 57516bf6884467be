# dapobench — the two commands a newcomer needs are `make run` and `make test`.

# The onnxruntime release is named once, in onnx/runner (ORTVersion).
ORT_VERSION := $(shell sed -n 's/^const ORTVersion = "\(.*\)"$$/\1/p' onnx/runner/library.go)
ORT_DIR     := .cache/onnxruntime-$(ORT_VERSION)
export ONNXRUNTIME_LIB ?= $(CURDIR)/$(ORT_DIR)/libonnxruntime.so.1

GO      ?= go
BIN     := bin/dapobench
DEMO    := runs/demo

.PHONY: setup build run test test-slurm lint fuzz bench clean results

## setup: fetch Go modules and the onnxruntime shared library (idempotent)
setup:
	$(GO) mod download
	bash scripts/setup-onnxruntime.sh $(ORT_VERSION) $(ORT_DIR)

## build: compile the CLI into bin/
build: setup
	$(GO) build -o $(BIN) ./cmd/dapobench

## run: the main job on the embedded default: the fixture study (DAPO's
## zero-shot protocol on the synthetic fixtures, tiny models)
run: build
	$(BIN) demo --out $(DEMO)

# Packages that start goroutines run again under the race detector; their
# tests of numbers alone skip that pass (internal/race).
RACE_PKGS := ./loaders/... ./bench/... ./metrics/... ./internal/parallel/... ./onnx/runner/... ./dapo/... ./baselines/... ./reports/resultsmd/... ./train/...

## lint: gofmt, go vet and a tidy go.mod, or fail
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt: not formatted (run gofmt -w):"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

## test: lint, the whole test suite, and the race detector on concurrent packages
test: setup lint
	$(GO) test -count=1 ./...
	$(GO) test -race -count=1 $(RACE_PKGS)

## test-slurm: the fixture study on a real single-node Slurm cluster started on
## localhost, against local runs (byte-identical results), with one task killed
## and resubmitted; installs slurm-wlm and munge from apt when missing (root)
test-slurm: build
	@if [ "$$(id -u)" != 0 ]; then \
	  if [ -n "$$CI" ]; then echo "test-slurm: FAILED: CI must run as root to start the test cluster"; exit 1; fi; \
	  echo "test-slurm: SKIPPED: the test cluster runs its daemons as root (and installs slurm-wlm and munge with apt)"; exit 0; fi; \
	set -e; \
	bash scripts/slurm/cluster.sh install; \
	bash scripts/slurm/selftest.sh; \
	DAPOBENCH_SLURM_TEST=1 DAPOBENCH_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -v -timeout 20m -run '^TestSlurm$$' ./study/

## results: RESULTS.md from the golden fixture results (tables only; refresh
## the golden files first with go test ./cmd/dapobench -run FixtureGolden -update)
results: build
	$(BIN) report $(foreach d,mvtec visa mpdd mad-sim mad-real real-iad,$(foreach s,dapo winclip anomalyclip adaclip aprilgan multiads,cmd/dapobench/testdata/golden/$(d)-$(s).json)) --out . --quiet \
	  --title "Fixture results: untrained tiny models on the synthetic datasets (a regression signal, not a benchmark)"

## fuzz: run every fuzz target for a short while (FUZZTIME=1m for the full run)
FUZZTIME ?= 10s
fuzz: setup
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## bench: every Go benchmark
bench: setup
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-preprocess: images/s for decode+resize+normalise at 518, Go against Pillow (python3-pil) on the same images
##   (TAGS=turbojpeg decodes JPEG with libjpeg-turbo; needs libturbojpeg0-dev)
.PHONY: bench-preprocess
bench-preprocess:
	GO=$(GO) TAGS=$(TAGS) bash bench/preprocess/testdata/bench.sh

clean:
	rm -rf bin runs

## bench-metrics: exact pixel metrics over 50 M pixels, Go (one core) against scikit-learn on the same data
.PHONY: bench-metrics
BENCH_METRICS_DIR ?= $(CURDIR)/.cache/bench-metrics
PYTHON ?= /usr/bin/python3
bench-metrics:
	mkdir -p $(BENCH_METRICS_DIR)
	DAPOBENCH_BENCH_DATA=$(BENCH_METRICS_DIR) $(GO) test -count=1 -run '^TestWriteBenchData$$' ./metrics/
	$(GO) test -run '^$$' -bench '^BenchmarkPixels$$' -benchtime 3x -count 5 -cpu 1 ./metrics/ | tee $(BENCH_METRICS_DIR)/go-bench.txt
	$(PYTHON) metrics/testdata/bench_sklearn.py $(BENCH_METRICS_DIR)

## bench-run: the pipeline against its own image tower on seeded ViT-B and ViT-L DAPO models
##   (throughput, peak RSS, a second prompt variant over the warm cache); BIN_BEFORE=old binary
##   measures an earlier build in the same rounds. RUNS, MODELS="vitb vitl", CATEGORY=bottle.
.PHONY: bench-run bench-build bench-train
bench-run: build
	BIN=$(BIN) bash scripts/bench/pipeline.sh

## bench-build: models build of a seeded ViT-L (1.7 GB of weights): seconds and peak RSS; BIN_BEFORE as above
bench-build: build
	BIN=$(BIN) GO=$(GO) bash scripts/bench/build.sh

## bench-train: two training steps of a seeded ViT-L DAPO model at 518 px, batch 8 (TRAIN_ARCH=vit-b for
##   ViT-B/16 at 224): step time, peak RSS and its growth from the first step to the second
TRAIN_ARCH ?= vit-l
TRAIN_BATCH ?= 8
TRAIN_RECOMPUTE ?= auto
bench-train: setup
	$(GO) test -run '^$$' -bench '^BenchmarkStep$$' -benchtime 2x -timeout 120m ./train/ \
	  -train.arch=$(TRAIN_ARCH) -train.batch=$(TRAIN_BATCH) -train.recompute=$(TRAIN_RECOMPUTE)
