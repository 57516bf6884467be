// Package figures draws the pictures of a report with gonum/plot: ROC and
// precision-recall curves from the image scores a run stores, grouped bars
// of a metric across runs, a defect-type confusion matrix as a heat map,
// and anomaly-map overlays drawn pixel by pixel with image/draw.
//
// Every figure is built from plain values (scores, labels, matrices,
// images), not from run directories, so that it can be tested and reused
// on its own; reports/resultsmd wires runs to figures.
package figures
