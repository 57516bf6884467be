// Package multiads is the zero-shot MultiADS baseline (Sadikaj et al.,
// ICCV 2025) as a bench.Scheme, following boschresearch/MultiADS test.py
// and test_multi_defect.py at 66900bb (docs/methods.md#multiads-overview):
//
//   - model and linear layers as APRIL-GAN's (the repository's open_clip
//     and model.py are APRIL-GAN's): ViT-L/14@336px at 518 pixels with
//     exact GELU, raw block outputs of layers 6/12/18/24, one trained
//     nn.Linear per layer;
//   - text: per dataset a defect-aware handcrafted ensemble, one class
//     vector per state group: normal and every defect type of the
//     dataset (21 for MVTec-AD), for every category, with the category
//     name verbatim (docs/methods.md#multiads-prompts);
//   - map: per layer, logits 100·p·Tᵀ upsampled bilinearly with
//     align_corners=True, softmax over all classes, the sum of the defect
//     channels; summed over the layers (docs/methods.md#multiads-scoring);
//   - image score: as test.py computes it at that commit, the mean of the
//     map's three largest values, min–max normalised over the images of
//     the category in the run (bench.ScoreFinisher); the softmax score
//     Σ_{c≥1} softmax(100·f·Tᵀ)_c that test.py computes and then
//     overwrites is the variant multiads/softmax-score;
//   - multi-type segmentation as test_multi_defect.py: the category's own
//     defect list, per layer a softmax over its classes, summed over the
//     layers with the normal channel (docs/methods.md#multiads-multitype).
//
// The linear layers come from a checkpoint of the official train.py
// (imported; the repository publishes none) or of dapobench train, or,
// labelled "untrained", from checkpoints.Untrained.
package multiads
