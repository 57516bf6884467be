// Package docs holds dapobench's reference documentation: methods.md (what
// each scheme computes and every upstream quirk kept), data.md (layouts,
// quirks and counts of the benchmarks) and evaluation.md (definitions and
// variants of every metric). Code cites them by explicit anchor, e.g.
// docs/methods.md#dapo-eot-index, instead of repeating the reasoning.
//
// The package has no code; its tests check that every docs/<file>.md#<anchor>
// cited anywhere in the module, and every link between the documents,
// resolves, so that a renamed or deleted anchor fails the build rather than
// leaving a dangling reason in the code.
package docs
