// Package winclip is the zero-shot WinCLIP baseline (Jeong et al., CVPR
// 2023) as a bench.Scheme, following anomalib's implementation
// (docs/methods.md#winclip-overview):
//
//   - text: a compositional prompt ensemble (7 normal and 4 anomalous state
//     phrases × the template list) through the plain text tower; each
//     class embedding is the mean of its raw, unnormalised prompt
//     embeddings;
//   - image score: softmax(cos(v, [t_n, t_a]) / 0.07)[1] of the full-image
//     embedding;
//   - map: the same class score for every 2×2 and 3×3 window of patches
//     (stride 1), each window encoded on its own (CLS and the window's
//     patch tokens through the whole tower), the harmonic mean of the
//     windows covering each patch per scale, the harmonic mean of the
//     image score and the scale maps, and bilinear upsampling
//     (align_corners=False) to the image size.
//
// Window embeddings are computed once per image in Extract and cached with
// the global embedding, so re-scoring with other prompts or scales does not
// run the image tower again. Extract always stores both scales, so that all
// variants share one feature-cache entry.
package winclip
