// Package adaclip is the AdaCLIP baseline (Cao et al., ECCV 2024) as a
// bench.Scheme, following caoyunkang/AdaCLIP's test.py and
// method/adaclip.py (docs/methods.md#adaclip-overview):
//
//   - image tower (clip variant adaclip, one graph): a plain pass gives
//     the image embedding e; five linear heads turn e into dynamic visual
//     prompts, added to the static prompts of blocks 0..3, rounded to
//     float16 and appended at the end of the token sequence (block 0) or
//     put in place of its last 5 tokens (blocks 1..3); the patch tokens of
//     layers 6/12/18/24 and the class token are projected by learned
//     heads;
//   - text tower, per image: 28 normal and 20 abnormal sentences of the
//     category name, positions 1..5 overwritten before text blocks 1..3
//     by float16-rounded dynamic (from e) plus static text prompts; per
//     state, the normalised sentence embeddings are averaged and
//     normalised;
//   - image score: hybrid semantic fusion (the 100 most anomalous patches
//     clustered by k-means into 20 groups, each group weighted equally)
//     mixed 0.2 : 0.8 with the projected class token, softmax(100·f·T)
//     [abnormal];
//   - map: the mean over layers of the 100·cos logits, upsampled bilinearly
//     (align_corners=True) before the softmax, (p_abn + 1 − p_norm)/2,
//     Gaussian σ = 4.
//
// The k-means seeds come from numpy's global generator seeded 111, as the
// official process draws them image after image (package kmeans); the
// variant adaclip/kmeans-per-image gives every image the seeds of a fresh
// process instead. The text features depend on the image, so the text
// tower runs once per image (48 sentences); they are kept in the run's
// feature cache beside the image features.
package adaclip
