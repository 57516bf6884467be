package runner

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceKind says where a Runtime should run its graphs.
type DeviceKind int

const (
	// Auto tries CUDA and falls back to the CPU with one warning.
	Auto DeviceKind = iota
	// CPU never touches a GPU.
	CPU
	// CUDA must run on the GPU; a GPU that cannot start is an error.
	CUDA
)

// Device is a parsed --device value: auto, cpu, cuda or cuda:N.
type Device struct {
	Kind DeviceKind
	ID   int // CUDA device ordinal, for Auto and CUDA
}

// ParseDevice parses auto, cpu, cuda (meaning cuda:0) or cuda:N. The empty
// string means auto.
func ParseDevice(s string) (Device, error) {
	switch s {
	case "", "auto":
		return Device{Kind: Auto}, nil
	case "cpu":
		return Device{Kind: CPU}, nil
	case "cuda":
		return Device{Kind: CUDA}, nil
	}
	if rest, ok := strings.CutPrefix(s, "cuda:"); ok {
		id, err := strconv.Atoi(rest)
		if err == nil && id >= 0 && rest == strconv.Itoa(id) {
			return Device{Kind: CUDA, ID: id}, nil
		}
	}
	return Device{}, fmt.Errorf("runner: device %q: want auto, cpu, cuda or cuda:N", s)
}

func (d Device) String() string {
	switch d.Kind {
	case Auto:
		return "auto"
	case CPU:
		return "cpu"
	}
	return "cuda:" + strconv.Itoa(d.ID)
}

// Execution provider names as onnxruntime spells them; Session.Provider and
// Runtime.Provider return one of these so results files can record it.
const (
	ProviderCPU  = "CPUExecutionProvider"
	ProviderCUDA = "CUDAExecutionProvider"
)
