// Package aprilgan is the zero-shot APRIL-GAN baseline (Chen et al., VAND
// 2023 challenge) as a bench.Scheme, following ByChelsea/VAND-APRIL-GAN
// test.py at f13b8a6 (docs/methods.md#aprilgan-overview):
//
//   - model: OpenAI ViT-L/14@336px run at 518 pixels by the repository's
//     open_clip factory, which rebuilds it with exact GELU in both towers
//     (clip.FactoryArch; docs/methods.md#aprilgan-gelu); the patch tokens
//     are the raw outputs of blocks 6, 12, 18 and 24, class token
//     included, without ln_post or the projection;
//   - text: per category, the 7 normal and 5 abnormal states × 35
//     templates with the category name verbatim, each group's prompt
//     features normalised, averaged and normalised
//     (docs/methods.md#aprilgan-prompts);
//   - image score: softmax(100·f·Tᵀ)[abnormal] of the normalised global
//     feature;
//   - map: per feature layer, the trained nn.Linear(Dv → De) of that
//     layer on the patch tokens without the class token, normalised,
//     logits 100·p·Tᵀ on the grid, bilinear upsampling with
//     align_corners=True to the image size, softmax over the two states,
//     the abnormal channel; summed over the layers, no smoothing
//     (docs/methods.md#aprilgan-scoring).
//
// The linear layers come from an imported checkpoint
// (`{'trainable_linearlayer': …}`, the published mvtec_pretrained.pth and
// visa_pretrained.pth; docs/methods.md#aprilgan-checkpoint) or, labelled
// "untrained", from checkpoints.Untrained.
package aprilgan
