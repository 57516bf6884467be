// Package anomalyclip is the AnomalyCLIP baseline (Zhou et al., ICLR 2024)
// as a bench.Scheme, following zqhang/AnomalyCLIP test.py
// (docs/methods.md#anomalyclip-overview):
//
//   - text: two object-agnostic prompts, "X×12 object." (normal) and
//     "X×12 damaged object." (abnormal), with the learned contexts ctx_pos
//     and ctx_neg spliced over the twelve X tokens and the deep text
//     tokens fed to the tower; both features L2-normalised;
//   - image score: softmax(f·T / 0.07)[abnormal] of the normalised global
//     feature (the DPAM tower's x_ori[CLS]·proj);
//   - map: per used layer, softmax over normal/abnormal of the normalised
//     patch tokens (V-V path, ln_post, proj; CLS dropped), reshaped G×G,
//     upsampled bilinearly (align_corners=False) to the image size, turned
//     into (p_abn + 1 − p_norm)/2, summed over the layers, then smoothed by
//     scipy.ndimage.gaussian_filter(σ = 4).
//
// The learned tensors come from an imported checkpoint or, labelled
// "untrained", from checkpoints.Untrained.
package anomalyclip
