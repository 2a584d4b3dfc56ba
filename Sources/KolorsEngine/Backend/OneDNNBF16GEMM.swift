import CDNNL
import CKolorsKernels
import Foundation

/// bf16 × bf16 → f32 matrix products on oneDNN (AVX512-BF16 / AMX kernels), with the bias
/// added by the primitive; primitives created once per shape and reused. Available only where
/// oneDNN implements bf16 matmul for the CPU, and only after a self-check against the same
/// product computed on float32 BLAS from the same bf16 operands.
public final class OneDNNBF16GEMM: @unchecked Sendable {
    public static let shared = OneDNNBF16GEMM()

    private var engine: dnnl_engine_t?
    private var stream: dnnl_stream_t?
    private var primitives: [Key: dnnl_primitive_t] = [:]
    private let lock = NSLock()
    private var checked: Bool?

    private struct Key: Hashable { let m: Int, n: Int, k: Int, ldc: Int, bias: Bool }

    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    private init() {}

    /// Whether the CPU flags include AVX512-BF16 (what oneDNN's bf16 kernels need).
    public static var cpuHasBF16: Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
        return info.split(separator: "\n").first { $0.hasPrefix("flags") }?
            .split(separator: " ").contains { $0 == "avx512_bf16" || $0 == "amx_bf16" } ?? false
    }

    /// Whether bf16 products run here: oneDNN builds the primitive and a 37×29×45 product
    /// with bias agrees with float32 BLAS on the same bf16-rounded operands (≤ 1e-5 relative).
    public var isAvailable: Bool {
        lock.lock()
        if let checked { lock.unlock(); return checked }
        lock.unlock()
        let ok = selfCheck()
        lock.lock(); checked = ok; lock.unlock()
        return ok
    }

    private func selfCheck() -> Bool {
        let (m, n, k) = (37, 29, 45)
        var a = [Float](repeating: 0, count: m * k), w = [Float](repeating: 0, count: n * k)
        var bias = [Float](repeating: 0, count: n)
        var seed: UInt32 = 12345
        func next() -> Float { seed = seed &* 1_664_525 &+ 1_013_904_223; return Float(Int32(bitPattern: seed >> 8) - (1 << 23)) / Float(1 << 23) }
        for i in a.indices { a[i] = next() }
        for i in w.indices { w[i] = next() }
        for i in bias.indices { bias[i] = next() }
        var a16 = [UInt16](repeating: 0, count: m * k), w16 = [UInt16](repeating: 0, count: n * k)
        kk_f32_to_bf16(a, &a16, a.count)
        kk_f32_to_bf16(w, &w16, w.count)
        var got = [Float](repeating: 0, count: m * n)
        do {
            try a16.withUnsafeBufferPointer { ap in
                try w16.withUnsafeBufferPointer { wp in
                    try bias.withUnsafeBufferPointer { bp in
                        try got.withUnsafeMutableBufferPointer { cp in
                            try multiply(a: ap.baseAddress!, b: wp.baseAddress!, bias: bp.baseAddress!, c: cp.baseAddress!,
                                         m: m, n: n, k: k, ldc: n)
                        }
                    }
                }
            }
        } catch {
            return false
        }
        kk_round_bf16(a, &a, a.count)
        kk_round_bf16(w, &w, w.count)
        var err = 0.0, norm = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var s = Double(bias[j])
                for p in 0..<k { s += Double(a[i * k + p]) * Double(w[j * k + p]) }
                err += (Double(got[i * n + j]) - s) * (Double(got[i * n + j]) - s)
                norm += s * s
            }
        }
        return (err / max(norm, 1e-30)).squareRoot() <= 1e-5
    }

    private func setUp() throws {
        if engine != nil { return }
        (engine, stream) = try OneDNNCPU.makeEngineAndStream()
    }

    private struct Descs {
        var a = dnnl_memory_desc_t(), b = dnnl_memory_desc_t(), bias = dnnl_memory_desc_t(), c = dnnl_memory_desc_t()
    }

    private func descs(_ key: Key) -> Descs {
        var d = Descs()
        var ad: [Int64] = [Int64(key.m), Int64(key.k)], bd: [Int64] = [Int64(key.k), Int64(key.n)]
        var biasd: [Int64] = [1, Int64(key.n)], cd: [Int64] = [Int64(key.m), Int64(key.n)]
        var cs: [Int64] = [Int64(key.ldc), 1]
        dnnl_memory_desc_init_by_tag(&d.a, 2, &ad, dnnl_bf16, dnnl_ab)
        dnnl_memory_desc_init_by_tag(&d.b, 2, &bd, dnnl_bf16, dnnl_ba)  // weights stored [N, K] row-major
        dnnl_memory_desc_init_by_tag(&d.bias, 2, &biasd, dnnl_f32, dnnl_ab)
        dnnl_memory_desc_init_by_strides(&d.c, 2, &cd, dnnl_f32, &cs)
        return d
    }

    private func primitive(_ key: Key) throws -> dnnl_primitive_t {
        if let p = primitives[key] { return p }
        try setUp()
        var d = descs(key)
        var desc = dnnl_matmul_desc_t()
        let status = key.bias ? dnnl_matmul_desc_init(&desc, &d.a, &d.b, &d.bias, &d.c)
                              : dnnl_matmul_desc_init(&desc, &d.a, &d.b, nil, &d.c)
        guard status == dnnl_success else { throw Unavailable(description: "oneDNN: bf16 matmul descriptor refused") }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil) == dnnl_success, let pd else {
            throw Unavailable(description: "oneDNN: bf16 matmul is not implemented for this CPU")
        }
        defer { dnnl_primitive_desc_destroy(pd) }
        var p: dnnl_primitive_t?
        guard dnnl_primitive_create(&p, pd) == dnnl_success, let p else {
            throw Unavailable(description: "oneDNN: cannot create the bf16 matmul")
        }
        primitives[key] = p
        return p
    }

    /// c[M, N] (row stride ldc) = a[M, K] · bᵀ (+ bias[N]) with a and b [N, K] in bf16, f32 sums.
    public func multiply(a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, bias: UnsafePointer<Float>?,
                         c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, ldc: Int) throws {
        lock.lock(); defer { lock.unlock() }
        let key = Key(m: m, n: n, k: k, ldc: ldc, bias: bias != nil)
        let p = try primitive(key)
        var d = descs(key)
        var ma: dnnl_memory_t?, mb: dnnl_memory_t?, mbias: dnnl_memory_t?, mc: dnnl_memory_t?
        dnnl_memory_create(&ma, &d.a, engine, UnsafeMutableRawPointer(mutating: a))
        dnnl_memory_create(&mb, &d.b, engine, UnsafeMutableRawPointer(mutating: b))
        dnnl_memory_create(&mc, &d.c, engine, UnsafeMutableRawPointer(c))
        if let bias { dnnl_memory_create(&mbias, &d.bias, engine, UnsafeMutableRawPointer(mutating: bias)) }
        defer {
            dnnl_memory_destroy(ma)
            dnnl_memory_destroy(mb)
            dnnl_memory_destroy(mc)
            if mbias != nil { dnnl_memory_destroy(mbias) }
        }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: ma), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: mb),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: mc)]
        if mbias != nil { args.append(dnnl_exec_arg_t(arg: DNNL_ARG_BIAS, memory: mbias)) }
        guard dnnl_primitive_execute(p, stream, Int32(args.count), &args) == dnnl_success,
              dnnl_stream_wait(stream) == dnnl_success else {
            throw Unavailable(description: "oneDNN: bf16 matmul failed")
        }
    }
}
