import Foundation

/// Linear layers, convolutions and attention on oneDNN (`OneDNNCompute`: primitives per shape,
/// weights prepared once, bias and residual fused), plain matmuls on OpenBLAS, in float32 or
/// bf16. In bf16 every product takes bf16 operands — activations rounded to nearest
/// even, weights converted from their stored fp16/bf16/fp32 — and sums in float32, as
/// diffusers' bf16 matmuls do; norms, softmax and element-wise work stay float32.
///
/// Where oneDNN cannot run the data type (bf16 without AVX512-BF16/AMX, or a failed
/// self-check), every product runs the same arithmetic on float32 BLAS
/// (`OpenBLASBackend(bf16Operands:)`). The nearest-2× upsample convolution takes that path (fused
/// Winograd) in float32 and oneDNN's in bf16. Linear layers whose weights
/// are int8 or used once per run (the text encoder's) are converted block by block on each call
/// instead of kept in a prepared copy (`OneDNNCompute.linear`).
public final class OneDNNBackend: DelegatingBackend, @unchecked Sendable {
    /// The OpenBLAS path with the same operand rounding (matmul, fallbacks).
    public let emulated: OpenBLASBackend
    public var base: ComputeBackend { emulated }
    /// The oneDNN primitives, or nil where this data type does not run here.
    public let compute: OneDNNCompute?
    public let dataType: OneDNNCompute.DataType

    public var name: String { "\(dataType)-" + (compute != nil ? "onednn" : dataType == .bf16 ? "operands-openblas" : "openblas") }
    /// Whether linear layers and convolutions run on oneDNN (false: on OpenBLAS).
    public var usesOneDNN: Bool { compute != nil }

    public init(_ dataType: OneDNNCompute.DataType, useOneDNN: Bool = true) {
        self.dataType = dataType
        emulated = OpenBLASBackend(bf16Operands: dataType == .bf16)
        let c = dataType == .f32 ? OneDNNCompute.float32 : OneDNNCompute.bfloat16
        compute = useOneDNN && c.isAvailable ? c : nil
    }

    /// Convolutions with int8-stored weights stay on OpenBLAS (no model has them); linear
    /// layers with int8 weights run on oneDNN, dequantized block by block.
    private func onOneDNN(_ weight: Weight) -> OneDNNCompute? {
        if weight.isInt8 { return nil }
        return compute
    }

    private let lock = NSLock()
    private var fallbackCount = 0
    private var lastFailure: String?

    /// Operations that oneDNN refused or failed and OpenBLAS computed instead (results stay
    /// right; benchmarks report the count so a silent fallback cannot pass for oneDNN speed).
    public var fallbacks: (count: Int, last: String?) {
        lock.lock(); defer { lock.unlock() }
        return (fallbackCount, lastFailure)
    }

    private func run(_ op: String, _ oneDNN: () throws -> Tensor, else fallback: () -> Tensor) -> Tensor {
        OpProfiler.shared.measure(op) {
            do {
                return try oneDNN()
            } catch {
                lock.lock(); fallbackCount += 1; lastFailure = "\(error)"; lock.unlock()
                return fallback()
            }
        }
    }

    public func linear(_ x: Tensor, weight: Weight, bias: Tensor?) -> Tensor {
        guard let c = compute else { return emulated.linear(x, weight: weight, bias: bias) }
        return run("linear", { try c.linear(x, weight: weight, bias: bias) }, else: { emulated.linear(x, weight: weight, bias: bias) })
    }

    public func linear(_ x: Tensor, weight: Weight, bias: Tensor?, residual: Tensor) -> Tensor {
        guard let c = compute else { return emulated.linear(x, weight: weight, bias: bias, residual: residual) }
        return run("linear", { try c.linear(x, weight: weight, bias: bias, residual: residual) },
                   else: { emulated.linear(x, weight: weight, bias: bias, residual: residual) })
    }

    public func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, scale: Float,
                          mask: AttentionMask?) -> Tensor {
        guard let c = compute else {
            return emulated.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, scale: scale, mask: mask)
        }
        return run("attention", { try c.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, scale: scale, mask: mask) },
                   else: { emulated.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, scale: scale, mask: mask) })
    }

    /// In bf16 the upsampled input is made (nearest 2×) and convolved on oneDNN: its bf16 direct
    /// convolution outruns the float32 Winograd path, which reads the upsampling inside its input
    /// transform (that stays the float32 choice, where it saves the 4× larger input).
    public func conv2dUpsampled2x(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        guard dataType == .bf16, x.rank == 4, let c = onOneDNN(weight) else {
            return emulated.conv2dUpsampled2x(x, weight: weight, bias: bias, stride: stride, padding: padding)
        }
        return run("conv2d", {
            try c.conv2d(upsampleNearest(x, height: 2 * x.shape[2], width: 2 * x.shape[3]), weight: weight, bias: bias,
                         stride: stride, padding: padding)
        }, else: { emulated.conv2dUpsampled2x(x, weight: weight, bias: bias, stride: stride, padding: padding) })
    }

    public func conv2d(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        guard let c = onOneDNN(weight) else { return emulated.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding) }
        return run("conv2d", { try c.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding) },
                   else: { emulated.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding) })
    }
}
