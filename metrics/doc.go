// Package metrics computes the threshold-free anomaly-detection metrics the
// reference code reports, exactly and fast: image and pixel AUROC, average
// precision (scikit-learn's step-wise AP), F1-max with its threshold, AUPRO
// in two named variants (the MVTec AD evaluation script's exact PRO curve,
// and the 200-threshold "cal_pro_score" of AnomalyCLIP, APRIL-GAN and DAPO),
// per-defect-type metrics, and paired significance tests.
//
// Every exact metric depends only on the grouped score table: for each
// distinct score, the number of negatives and positives with that score and,
// for PRO, the summed region weights of the positives (1/|region| per
// pixel). Ties therefore get half credit in AUROC, and the order of tied
// samples never matters, as in scikit-learn. The table is walked once from
// the highest score to the lowest, and all metrics come out of that walk.
//
// Pixels streams a category's anomaly maps one image at a time and keeps
// about 2.5 bytes per pixel; Table holds image-level scores.
// A metric that is undefined (one class only, no defect regions) is returned
// as a Value with a reason, never as a silent 0 or 0.5.
//
// The tie semantics follow docs/evaluation.md#metric-grouped-table, undefined
// values docs/evaluation.md#metric-undefined and input checks
// docs/evaluation.md#metric-edge-cases.
package metrics
