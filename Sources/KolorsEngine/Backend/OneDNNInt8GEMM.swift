import CDNNL
import Foundation

/// u8 × s8 → s32 matrix products on oneDNN (its `gemm:jit` int8 kernels), primitives created
/// once per shape and reused. Without AVX512-VNNI the kernels add u8·s8 pairs in 16 bits, so
/// activations must stay within 0…127 (7 bits) for the sums to be exact — callers quantize so.
public final class OneDNNInt8GEMM: @unchecked Sendable {
    public static let shared = OneDNNInt8GEMM()

    private var engine: dnnl_engine_t?
    private var stream: dnnl_stream_t?
    private var primitives: [Key: dnnl_primitive_t] = [:]
    private let lock = NSLock()

    private struct Key: Hashable { let m: Int, n: Int, k: Int }

    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    private init() {}

    /// Whether oneDNN can run int8 matrix products on this CPU.
    public var isAvailable: Bool {
        lock.lock(); defer { lock.unlock() }
        return (try? primitive(Key(m: 8, n: 8, k: 8))) != nil
    }

    private func setUp() throws {
        if engine != nil { return }
        (engine, stream) = try OneDNNCPU.makeEngineAndStream()
    }

    private func primitive(_ key: Key) throws -> dnnl_primitive_t {
        if let p = primitives[key] { return p }
        try setUp()
        var a = dnnl_memory_desc_t(), b = dnnl_memory_desc_t(), c = dnnl_memory_desc_t()
        var ad: [Int64] = [Int64(key.m), Int64(key.k)], bd: [Int64] = [Int64(key.k), Int64(key.n)], cd: [Int64] = [Int64(key.m), Int64(key.n)]
        dnnl_memory_desc_init_by_tag(&a, 2, &ad, dnnl_u8, dnnl_ab)
        dnnl_memory_desc_init_by_tag(&b, 2, &bd, dnnl_s8, dnnl_ba)  // weights stored [N, K] row-major
        dnnl_memory_desc_init_by_tag(&c, 2, &cd, dnnl_s32, dnnl_ab)
        var desc = dnnl_matmul_desc_t()
        guard dnnl_matmul_desc_init(&desc, &a, &b, nil, &c) == dnnl_success else {
            throw Unavailable(description: "oneDNN: int8 matmul descriptor refused")
        }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil) == dnnl_success, let pd else {
            throw Unavailable(description: "oneDNN: int8 matmul is not implemented for this CPU")
        }
        defer { dnnl_primitive_desc_destroy(pd) }
        var p: dnnl_primitive_t?
        guard dnnl_primitive_create(&p, pd) == dnnl_success, let p else {
            throw Unavailable(description: "oneDNN: cannot create the int8 matmul")
        }
        primitives[key] = p
        return p
    }

    /// c[M, N] = a[M, K] (u8, 0…127) · bᵀ with b [N, K] (s8), exact in s32.
    public func multiply(a: UnsafePointer<UInt8>, b: UnsafePointer<Int8>, c: UnsafeMutablePointer<Int32>,
                         m: Int, n: Int, k: Int) throws {
        lock.lock(); defer { lock.unlock() }
        let p = try primitive(Key(m: m, n: n, k: k))
        var a2 = dnnl_memory_desc_t(), b2 = dnnl_memory_desc_t(), c2 = dnnl_memory_desc_t()
        var ad: [Int64] = [Int64(m), Int64(k)], bd: [Int64] = [Int64(k), Int64(n)], cd: [Int64] = [Int64(m), Int64(n)]
        dnnl_memory_desc_init_by_tag(&a2, 2, &ad, dnnl_u8, dnnl_ab)
        dnnl_memory_desc_init_by_tag(&b2, 2, &bd, dnnl_s8, dnnl_ba)
        dnnl_memory_desc_init_by_tag(&c2, 2, &cd, dnnl_s32, dnnl_ab)
        var ma: dnnl_memory_t?, mb: dnnl_memory_t?, mc: dnnl_memory_t?
        dnnl_memory_create(&ma, &a2, engine, UnsafeMutableRawPointer(mutating: a))
        dnnl_memory_create(&mb, &b2, engine, UnsafeMutableRawPointer(mutating: b))
        dnnl_memory_create(&mc, &c2, engine, UnsafeMutableRawPointer(c))
        defer {
            dnnl_memory_destroy(ma)
            dnnl_memory_destroy(mb)
            dnnl_memory_destroy(mc)
        }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: ma), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: mb),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: mc)]
        guard dnnl_primitive_execute(p, stream, 3, &args) == dnnl_success, dnnl_stream_wait(stream) == dnnl_success else {
            throw Unavailable(description: "oneDNN: int8 matmul failed")
        }
    }
}
