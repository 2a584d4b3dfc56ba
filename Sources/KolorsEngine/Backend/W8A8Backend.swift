import CKolorsKernels

/// EXPERIMENTAL: linear layers with int8 weights run as u8 × s8 integer products on oneDNN,
/// with activations quantized per row to 7 bits (scale max|x|/63, zero point 64 — 7 bits keep
/// the products exact on CPUs without AVX512-VNNI). Faster than float32 where oneDNN's int8
/// kernels are, at a cost in accuracy that `kolors bench text-encoder` and the tests report.
/// Every other operation, and every weight that is not int8, goes to `base`.
public final class W8A8Backend: DelegatingBackend, @unchecked Sendable {
    public let name = "w8a8-onednn (experimental)"
    public let base: ComputeBackend
    let gemm = OneDNNInt8GEMM.shared

    public init(base: ComputeBackend = Backends.float32) { self.base = base }

    /// Whether this CPU runs oneDNN's int8 products.
    public static var isAvailable: Bool { OneDNNInt8GEMM.shared.isAvailable }

    public func linear(_ x: Tensor, weight: Weight, bias: Tensor?) -> Tensor {
        guard case .int8(let q) = weight.storage else { return base.linear(x, weight: weight, bias: bias) }
        return OpProfiler.shared.measure("linear-w8a8") { int8Linear(x, q, bias) }
    }

    private func int8Linear(_ x: Tensor, _ q: Int8Matrix, _ bias: Tensor?) -> Tensor {
        let k = q.cols, n = q.rows
        precondition(x.shape.last == k, "linear: input \(x.shape) does not end in \(k)")
        let m = x.count / k
        var outShape = x.shape
        outShape[outShape.count - 1] = n
        let y = Tensor(shape: outShape, zeroed: false)
        let xu = UnsafeMutablePointer<UInt8>.allocate(capacity: m * k)
        let sa = UnsafeMutablePointer<Float>.allocate(capacity: m)
        let acc = UnsafeMutablePointer<Int32>.allocate(capacity: m * n)
        defer { xu.deallocate(); sa.deallocate(); acc.deallocate() }
        let xp = x.pointer
        parallelFor(m, grain: 8) { r in
            for i in r { kk_quantize_row_u7(xp + i * k, xu + i * k, k, sa + i) }
        }
        do {
            try gemm.multiply(a: xu, b: q.data, c: acc, m: m, n: n, k: k)
        } catch {
            // oneDNN refused at run time: fall back to the exact float path for this call.
            return base.linear(x, weight: Weight(int8: q), bias: bias)
        }
        let sums = q.rowSums
        let sw = q.scales.pointer, yp = y.pointer, bp = bias?.pointer
        sums.withUnsafeBufferPointer { ws in
            let wsp = ws.baseAddress!
            parallelFor(m, grain: 8) { r in
                kk_dequantize_gemm_u7(acc + r.lowerBound * n, sa + r.lowerBound, sw, wsp, bp,
                                      yp + r.lowerBound * n, r.count, n)
            }
        }
        return y
    }
}
