import CKolorsKernels

/// bfloat16 compute: every product (linear, convolution, attention) takes bf16 operands —
/// activations rounded to nearest even, weights converted from their stored fp16/bf16/fp32 —
/// and sums in float32, as diffusers' bf16 matmuls do; norms, softmax and element-wise work
/// stay float32. Linear layers run on oneDNN's bf16 matmul where the CPU has it (AVX512-BF16
/// or AMX, self-checked at first use); everything else, and every product on CPUs without
/// bf16 instructions, runs the same arithmetic on float32 BLAS (`OpenBLASBackend(bf16Operands:)`).
public final class BFloat16Backend: DelegatingBackend, @unchecked Sendable {
    /// The float32-BLAS path with bf16 operands (convolutions, attention, and linear where
    /// oneDNN has no bf16 kernels).
    public let emulated = OpenBLASBackend(bf16Operands: true)
    public var base: ComputeBackend { emulated }
    private let gemm: OneDNNBF16GEMM?
    /// Bytes of weight rows converted to bf16 per oneDNN call.
    public var mappedChunkBytes = 32 << 20

    public var name: String { gemm != nil ? "bf16-onednn" : "bf16-operands-openblas" }
    /// Whether linear layers run on oneDNN's bf16 kernels (false: float32 BLAS on bf16 operands).
    public var usesOneDNN: Bool { gemm != nil }

    public init(useOneDNN: Bool = true) {
        gemm = useOneDNN && OneDNNBF16GEMM.shared.isAvailable ? .shared : nil
    }

    public func linear(_ x: Tensor, weight: Weight, bias: Tensor?) -> Tensor {
        guard let gemm else { return emulated.linear(x, weight: weight, bias: bias) }
        return OpProfiler.shared.measure("linear-bf16") {
            (try? oneDNNLinear(gemm, x, weight, bias)) ?? emulated.linear(x, weight: weight, bias: bias)
        }
    }

    private func oneDNNLinear(_ gemm: OneDNNBF16GEMM, _ x: Tensor, _ weight: Weight, _ bias: Tensor?) throws -> Tensor {
        precondition(weight.shape.count == 2, "linear weight must be 2-D, got \(weight.shape)")
        let n = weight.shape[0], k = weight.shape[1]
        precondition(x.shape.last == k, "linear: input \(x.shape) does not end in \(k)")
        if let bias { precondition(bias.count == n, "linear: bias \(bias.shape) for \(n) outputs") }
        let m = x.count / k
        var outShape = x.shape
        outShape[outShape.count - 1] = n
        let y = Tensor(shape: outShape, zeroed: false)
        let x16 = UnsafeMutablePointer<UInt16>.allocate(capacity: m * k)
        defer { x16.deallocate() }
        let xp = x.pointer
        parallelFor(m * k, grain: 1 << 16) { r in kk_f32_to_bf16(xp + r.lowerBound, x16 + r.lowerBound, r.count) }
        let chunk = max(1, min(n, mappedChunkBytes / (k * 2)))
        let rowsF = Tensor(shape: [chunk, k], zeroed: false)
        let w16 = UnsafeMutablePointer<UInt16>.allocate(capacity: chunk * k)
        defer { w16.deallocate() }
        var r0 = 0
        while r0 < n {
            let rows = min(chunk, n - r0)
            let fp = rowsF.pointer
            parallelFor(rows, grain: 16) { rr in
                weight.convertRows((r0 + rr.lowerBound)..<(r0 + rr.upperBound), into: fp + rr.lowerBound * k)
                kk_f32_to_bf16(fp + rr.lowerBound * k, w16 + rr.lowerBound * k, rr.count * k)
            }
            try gemm.multiply(a: x16, b: w16, bias: bias.map { $0.pointer + r0 }, c: y.pointer + r0,
                              m: m, n: rows, k: k, ldc: n)
            r0 += rows
        }
        return y
    }
}

/// The precision the engine computes in (`--precision`).
public enum ComputePrecision: String, CaseIterable, Sendable {
    /// float32 throughout: the parity path.
    case fp32
    /// bf16 operands, float32 sums (see `BFloat16Backend`).
    case bf16

    public var backend: ComputeBackend { self == .fp32 ? Backends.float32 : Backends.bfloat16 }

    /// bf16 where this CPU multiplies bf16 natively (oneDNN, self-checked), fp32 elsewhere:
    /// without bf16 instructions bf16 is only slower and less exact.
    public static var automatic: ComputePrecision { OneDNNBF16GEMM.shared.isAvailable ? .bf16 : .fp32 }

    /// "fp32", "bf16" or "auto".
    public init?(argument: String) {
        if argument == "auto" { self = .automatic } else if let p = ComputePrecision(rawValue: argument) { self = p } else { return nil }
    }
}
