/// Zero padding of a 2-D convolution; the VAE encoder's downsampler pads right/bottom only.
public struct Padding2D: Sendable, Equatable {
    public var top: Int, left: Int, bottom: Int, right: Int
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }
    public static func symmetric(_ p: Int) -> Padding2D { Padding2D(top: p, left: p, bottom: p, right: p) }
    public static let none = Padding2D.symmetric(0)
}

/// The sizes of a 2-D convolution of an NCHW input with a [Cout, Cin, kh, kw] weight, checked.
public struct Conv2DShape: Sendable {
    public let batch: Int, inChannels: Int, height: Int, width: Int
    public let outChannels: Int, kernelHeight: Int, kernelWidth: Int
    public let outHeight: Int, outWidth: Int

    public init(input: [Int], weight: [Int], stride: Int, padding: Padding2D) {
        precondition(input.count == 4 && weight.count == 4, "conv2d: input \(input), weight \(weight)")
        (batch, inChannels, height, width) = (input[0], input[1], input[2], input[3])
        (outChannels, kernelHeight, kernelWidth) = (weight[0], weight[2], weight[3])
        precondition(weight[1] == inChannels, "conv2d: input has \(inChannels) channels, weight expects \(weight[1])")
        outHeight = (height + padding.top + padding.bottom - kernelHeight) / stride + 1
        outWidth = (width + padding.left + padding.right - kernelWidth) / stride + 1
        precondition(outHeight > 0 && outWidth > 0, "conv2d: output would be empty for input \(input)")
    }
}

/// An additive attention mask.
public enum AttentionMask: Sendable {
    /// Added to the scores of every batch item and head: [Lq, Lk].
    case shared(Tensor)
    /// One mask per batch item, shared by its heads: [B, Lq, Lk].
    case perBatch(Tensor)

    /// The [Lq, Lk] mask of batch item `b`.
    public func pointer(batch b: Int) -> UnsafeMutablePointer<Float> {
        switch self {
        case .shared(let m): m.pointer
        case .perBatch(let m): m.pointer + b * m.shape[1] * m.shape[2]
        }
    }
}

/// The sizes of a `ComputeBackend.attention` call — q [B, Lq, H·D], k and v [B, Lk, Hkv·D],
/// the mask [Lq, Lk] or [B, Lq, Lk] — checked.
public struct AttentionShape: Sendable {
    public let batch: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int
    /// Query heads per K/V head.
    public var group: Int { heads / kvHeads }

    public init(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, mask: AttentionMask?) {
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3, "attention wants [B, L, H·D] tensors")
        (batch, queries, keys) = (q.shape[0], q.shape[1], k.shape[1])
        precondition(k.shape[0] == batch && v.shape[0] == batch && v.shape[1] == keys, "attention: q \(q.shape) k \(k.shape) v \(v.shape)")
        precondition(heads % kvHeads == 0 && q.shape[2] % heads == 0, "attention: \(heads) heads, \(kvHeads) kv heads")
        (self.heads, self.kvHeads, headDim) = (heads, kvHeads, q.shape[2] / heads)
        precondition(k.shape[2] == kvHeads * headDim && v.shape[2] == kvHeads * headDim,
                     "attention: k/v width must be \(kvHeads)×\(headDim)")
        switch mask {
        case .shared(let m): precondition(m.shape == [queries, keys], "attention: mask \(m.shape) for \(queries)×\(keys)")
        case .perBatch(let m):
            precondition(m.shape == [batch, queries, keys], "attention: mask \(m.shape) for \(batch)×\(queries)×\(keys)")
        case nil: break
        }
    }
}

/// The seam between models and heavy arithmetic. Model code calls these (through the layers)
/// and never BLAS directly, so a new backend (bf16/int8 on oneDNN) touches no model.
public protocol ComputeBackend: AnyObject, Sendable {
    /// Short name for reports, e.g. "fp32-openblas".
    var name: String { get }

    /// `x[..., K] · Wᵀ + bias` with `W` stored [N, K] (PyTorch Linear layout). Output [..., N].
    func linear(_ x: Tensor, weight: Weight, bias: Tensor?) -> Tensor

    /// `linear` plus `residual` (the output's shape), which a backend may add inside the
    /// product (as GEMM's β·C or a oneDNN post-op) instead of in a separate pass.
    func linear(_ x: Tensor, weight: Weight, bias: Tensor?, residual: Tensor) -> Tensor

    /// 2-D convolution, NCHW input [B, Cin, H, W], weight [Cout, Cin, kh, kw].
    func conv2d(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor

    /// `conv2d` of `x` upsampled 2× by nearest neighbour (diffusers' Upsample2D), which a
    /// backend may compute without materialising the 4× larger input.
    func conv2dUpsampled2x(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor

    /// Scaled dot-product attention. q [B, Lq, H·D], k and v [B, Lk, Hkv·D] with H a multiple
    /// of Hkv (query head h uses K/V head h / (H/Hkv), as grouped/multi-query attention does).
    /// Output [B, Lq, H·D]. Memory stays bounded: queries are processed in chunks.
    func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, scale: Float,
                   mask: AttentionMask?) -> Tensor

    /// Plain matrix product C[M,N] = A[M,K] · B (B is [K,N], or [N,K] when `transposeB`).
    func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) -> Tensor
}

extension ComputeBackend {
    public func linear(_ x: Tensor, weight: Weight, bias: Tensor?, residual: Tensor) -> Tensor {
        let y = linear(x, weight: weight, bias: bias)
        addInPlace(y, residual)
        return y
    }

    public func conv2dUpsampled2x(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        conv2d(upsampleNearest(x, height: x.shape[2] * 2, width: x.shape[3] * 2), weight: weight, bias: bias,
               stride: stride, padding: padding)
    }
}

/// A backend that does some operations its own way (at least `linear`) and hands the rest to
/// `base`.
public protocol DelegatingBackend: ComputeBackend {
    var base: ComputeBackend { get }
}

extension DelegatingBackend {
    public func conv2d(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        base.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }

    public func conv2dUpsampled2x(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        base.conv2dUpsampled2x(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }

    public func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, scale: Float,
                          mask: AttentionMask?) -> Tensor {
        base.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, scale: scale, mask: mask)
    }

    public func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) -> Tensor {
        base.matmul(a, b, transposeB: transposeB)
    }
}

/// The backends this build has.
public enum Backends {
    /// float32 on OpenBLAS: the parity path.
    public static let float32: ComputeBackend = OpenBLASBackend()
    /// bf16 operands with float32 sums: oneDNN's bf16 primitives where the CPU has them.
    public static let bfloat16: ComputeBackend = OneDNNBackend(.bf16)
    /// float32 on oneDNN's primitives (linear, convolution): the bf16 code path in float32,
    /// which the tests check against diffusers on CPUs without bf16.
    public static let oneDNNFloat32: ComputeBackend = OneDNNBackend(.f32)
}
