// Package grad differentiates the ONNX graphs that onnx/graph builds, so
// that prompts and adapters can be trained without a training framework:
// Backward turns a forward model with a scalar loss output into one model
// that returns the loss and its gradients with respect to chosen graph
// inputs, and onnxruntime runs that model as it runs any inference graph,
// on CUDA where present.
//
// # How
//
// Learnable tensors are graph inputs; frozen weights are initializers.
// A gradient flows through the values that depend on a wrt input and that
// the loss depends on, both along differentiable edges (not through
// indices, shapes, comparisons or integer casts). Only nodes on such paths
// get gradient nodes: frozen branches and weights get none, and forward
// outputs that the loss does not use are dropped. Nodes are visited in
// reverse topological order; each applies its vector-Jacobian product
// (VJP), and a value used several times sums its contributions with one
// Sum node. Backward's nodes are named with GradPrefix.
//
// Rules need ranks (to swap the last two axes, to move a gathered axis)
// and, where available, sizes (to skip reductions that broadcasting did not
// cause), so the package infers types and shapes at build time, symbolic
// dimensions (the batch) included. Where a rule needs a shape at run time
// it reads it off the graph input that carries the symbol, which is alive
// for the whole run anyway, rather than off an activation, which a late
// Shape node would keep alive; Shape of an activation is the last resort.
//
// # Gradient rules
//
//	MatMul              dA = G·Bᵀ, dB = Aᵀ·G, summed over broadcast batch axes; a rank-2 B
//	                    is read through Gemm(transB) (no transposed copy of a frozen weight) and
//	                    a learnable rank-2 B gets one Gemm over the flattened batch; 1-D promoted
//	Add, Sub, Mul, Div  element-wise, each operand's gradient summed back over the axes it was
//	Pow, Sum            broadcast on (ReduceSum with axes as an input, then the shape); where a
//	                    symbolic size may or may not have been 1, the axes are chosen at run time
//	                    (NonZero of the shape comparison); Pow also for a tensor exponent (aᵖ·log a)
//	Sigmoid             y(1−y), from the output
//	Erf                 2/√π·exp(−x²)
//	Exp, Log, Sqrt      y, 1/x, 1/(2y); Neg, Reciprocal (−y²), Tanh (1−y²), Abs, Relu (0 at 0)
//	Softmax             y⊙(g − Σ g⊙y) over the axis, from the output; LogSoftmax g − eʸ·Σ g
//	LayerNormalization  dx = inv·(gs − mean gs − x̂·mean(gs⊙x̂)), gs = g⊙scale; dscale = Σ g⊙x̂,
//	                    dbias = Σ g; mean and inverse deviation are recomputed from x
//	Transpose           the inverse permutation
//	Reshape, Flatten,   Reshape back to the input's shape
//	Squeeze, Unsqueeze
//	Slice               Pad with zeros back to the input's extent (constant bounds, step 1)
//	Concat              Slice of each part
//	Gather              ScatterND(reduction=add) into zeros, with the gathered axis moved to the
//	                    front and back: repeated indices add up, and nothing but indices is kept
//	                    (a one-hot MatMul would build a dense [n, size] matrix)
//	GatherElements      ScatterElements(reduction=add) into zeros
//	Expand              summed back over the expanded axes
//	Cast, Identity      cast back, identity
//	ReduceSum/Mean      broadcast back (÷ count for the mean)
//	Clip                passes where lo ≤ x ≤ hi (as torch.clamp)
//	Max, Min            to the operand taken; ties to the first
//	Where               to the branch taken
//
// ScatterND and ScatterElements with reduction=add need opset 16; models
// at opsets 16 to 21 are accepted (the builder writes 17), and the Reduce*
// operations are read in the form of the model's opset.
//
// Not supported (an error names the node): operations without a rule on a
// differentiated path (Resize among them), Slice with steps other than 1 or
// with bounds that are not constants, reductions over axes that are not
// constants, gradients through LayerNormalization's optional Mean and
// InvStdDev outputs, model-local functions. Bilinear upsampling of a loss
// needs no Resize: it is a MatMul with fixed interpolation matrices (one
// per axis), whose gradient is the MatMul rule.
//
// # Memory
//
// The backward part keeps only the forward values its rules read: an
// operation's output where the rule is written in it (Sigmoid, Softmax,
// Exp, Sqrt), otherwise the inputs the rule needs for the inputs that need
// a gradient (a MatMul by a frozen weight keeps nothing of its input; Add,
// Reshape, Slice, Concat and Gather keep nothing). Analyze lists these
// values and their size. For a CLIP block differentiated for its prompts
// that is, per block: the two layer-norm inputs, the attention's per-head
// q, kᵀ, v and probabilities, and the MLP's hidden layer and its sigmoid.
//
// # Checking
//
// Options.Float64 computes the whole forward and backward pass in double,
// the reference for finite differences (package gradcheck). onnxruntime 1.24
// has no double Erf kernel, so in that mode Erf is evaluated as
// 2x/√π·∫₀¹exp(−x²u²)du with 32-point Gauss–Legendre quadrature, exact to
// about 1e-15; and its extended graph fusions put float-only kernels into
// double graphs, so double models run at the basic optimisation level.
package grad
