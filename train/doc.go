// Package train learns the prompts of DAPO and AnomalyCLIP with the
// official recipes (docs/methods.md#train-dapo-recipe,
// docs/methods.md#train-anomalyclip-recipe) without a training
// framework: onnxruntime runs one training step as an inference graph
// that returns the loss and its gradients, and Adam runs in Go.
//
// # The training graph
//
// A model directory's text.onnx and image.onnx are merged into one graph
// (Merge; names prefixed "text/" and "image/", external weights left in
// their files). In front of the text tower, the prompt learner splices the
// learned context between the constant token embeddings of each
// template's start token and of its suffix (words, end-of-text, padding),
// as the official prompt learners concatenate prefix, context and suffix.
// After the towers comes the head and the loss:
//
//	T    = normalize(mean over the E groups of the text features)      [1+K, De]
//	a    = normalize(mean of the defect rows of T); image CE on [f·t_normal, f·a]/τ
//	P_l  = softmax(normalize(adapter_l(patch_l))·Tᵀ/τ)                   per feature layer
//	S_l  = bilinear upsampling of P_l to the image size (fixed matrices, U·P·Vᵀ)
//	loss = 4·Σ_l [Focal(S_l, gt) + Dice(S_l[0], 1−gt_b) + Dice(Σ_{c≥1} S_l[c], gt_b)] + CE
//
// AnomalyCLIP has two prompts, no groups and no adapters, drops the class
// token of its projected patch tokens and upsamples with
// align_corners=False. grad.Backward turns the graph into one model that
// returns the loss, its terms and the gradients of the learned tensors
// (graph inputs under their checkpoint names); everything in CLIP is a
// frozen initializer.
//
// # Training
//
// Trainer reads the test split of the training dataset (the zero-shot
// protocol: MVTec-AD test → the others), prepares each batch (pixels,
// masks, the pixel class of each image's defect folder) while the
// previous one runs, and applies Adam with the official settings. After
// each epoch the State (tensors, Adam's moments, the loss history) can be
// written and a run resumed from it. A run starts from the seeded initial
// tensors, or from the tensors of a file (Init: an imported official
// checkpoint, another run's output or epoch checkpoint) with a fresh
// optimiser.
//
// # The ground-truth mask
//
// Both official trainers resize the 0/255 mask with PIL bilinear to the
// training size, which leaves levels between 0 and 255 on defect edges,
// and then read it differently (MaskRule): DAPO's train.py casts the float
// mask to torch.long before thresholding, so only level 255 is defect
// (MaskTruncate, its default here); AnomalyCLIP's thresholds at 0.5
// (MaskThreshold), as every evaluation does. On the 64×48 fixture images
// trained at 32 pixels, truncating drops 62 of 118 defect pixels and one
// crack entirely; the loss of the first step differs by 0.4% and the
// gradients by about 1% of their size (TestOfficialStep, against the
// official train.py run on both readings). Images already at the training
// size are not resampled and both readings agree.
package train
