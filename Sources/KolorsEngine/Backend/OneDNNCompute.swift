import CDNNL
import CKolorsKernels
import Foundation

/// Linear layers and convolutions on oneDNN primitives, in float32 or in bf16 (bf16 operands,
/// float32 sums and output). Primitives are created once per shape and reused across steps;
/// each weight is converted (fp16/bf16/fp32 → the compute type) and reordered into the layout
/// the primitive asks for **once**, at its first use, and kept with the weight (`Weight.prepared`)
/// for as long as the model lives, while the mapped source's pages are dropped. Weights used
/// once per run (`Weight.usedOncePerRun`: the text encoder's) and int8 weights are instead
/// converted block by block on every call into a plain layout the primitive reads as it is
/// (`streamedLinear`). Bias and a residual add run inside the primitive (post-ops), so neither
/// costs a pass over the output.
///
/// bf16 needs AVX512-BF16 or AMX (oneDNN has no bf16 kernels elsewhere); float32 runs on any
/// x86-64 and is how the tests exercise this code on CPUs without bf16. Each data type
/// self-checks at first use (`isAvailable`) against float32 BLAS on the same operands.
public final class OneDNNCompute: @unchecked Sendable {
    public enum DataType: String, Sendable { case f32, bf16 }

    public static let float32 = OneDNNCompute(.f32)
    public static let bfloat16 = OneDNNCompute(.bf16)

    public let dataType: DataType
    /// How many primitives stay cached; past it the least recently used one is destroyed (the
    /// studio may visit many image sizes in one session, each with its own set of shapes — one
    /// UNet size needs about 80, the VAE about 20).
    public let primitiveCapacity: Int
    private var engine: dnnl_engine_t?
    private var stream: dnnl_stream_t?
    private var primitives: [String: (primitive: Primitive, lastUse: UInt64)] = [:]
    private var uses: UInt64 = 0
    private let lock = NSLock()
    private var checked: SelfCheck?

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A compute of its own (own engine, stream and primitive cache); the process normally
    /// shares `float32` and `bfloat16`.
    public init(_ dataType: DataType, primitiveCapacity: Int = 512) {
        precondition(primitiveCapacity >= 2, "an attention call needs two primitives at once")
        self.dataType = dataType
        self.primitiveCapacity = primitiveCapacity
    }

    /// Linear calls that streamed their weight (used once per run, or int8) instead of keeping
    /// a prepared copy.
    public var streamedLinearCalls: Int {
        lock.lock(); defer { lock.unlock() }
        return streamedCalls
    }
    private var streamedCalls = 0

    /// The number of primitives cached now (at most `primitiveCapacity`).
    public var cachedPrimitives: Int {
        lock.lock(); defer { lock.unlock() }
        return primitives.count
    }

    private var dnnlType: dnnl_data_type_t { dataType == .f32 ? dnnl_f32 : dnnl_bf16 }
    private var elementBytes: Int { dataType == .f32 ? 4 : 2 }

    /// Whether the CPU flags include AVX512-BF16 or AMX-BF16 (what oneDNN's bf16 kernels need).
    public static var cpuHasBF16: Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
        return info.split(separator: "\n").first { $0.hasPrefix("flags") }?
            .split(separator: " ").contains { $0 == "avx512_bf16" || $0 == "amx_bf16" } ?? false
    }

    /// Whether this data type runs here: the CPU has the instructions, the primitives build, and
    /// the self-check (`selfCheck`) agrees with float32 BLAS within its bounds.
    public var isAvailable: Bool { unavailableReason == nil }

    /// Why this data type does not run here, in one line ("bf16 off: CPU lacks
    /// avx512_bf16/amx_bf16", "bf16 off: self-check attention 1.1e-03 > 1.0e-06"); nil when it
    /// runs. Decided once per process, at first use.
    public var unavailableReason: String? {
        lock.lock()
        if let checked { lock.unlock(); return checked.reason }
        lock.unlock()
        let verdict: SelfCheck
        if dataType == .bf16 && !Self.cpuHasBF16 {
            verdict = SelfCheck(reason: "bf16 off: CPU lacks avx512_bf16/amx_bf16", errors: [])
        } else {
            verdict = selfCheck(against: OpenBLASBackend(bf16Operands: dataType == .bf16))
        }
        lock.lock(); checked = verdict; lock.unlock()
        return verdict.reason
    }

    /// What a self-check measured: the relative L2 error of each operation against the reference,
    /// and the one-line reason this data type is off (nil: it passed).
    public struct SelfCheck: Sendable {
        public let reason: String?
        public let errors: [(operation: String, error: Double, bound: Double)]
    }

    /// Bounds of the self-check, per operation, relative L2 against float32 BLAS on the same
    /// (for bf16: the same bf16-rounded) operands. The operands are multiples of 1/16 in [-2, 2]
    /// (exact in bf16) and the attention scale is 1/4, so every product and every sum of the
    /// linear layer, the convolution and attention's Q·Kᵀ is exact in float32 (multiples of 1/256
    /// below 2⁸): both sides see bit-identical results there, and attention sees bit-identical
    /// scores, exponentials and bf16 probabilities. Only attention's P·V sums (probabilities are
    /// no short binary fractions) may differ in the order of float32 additions: a few units of
    /// 2⁻²⁴ ≈ 6e-8. 1e-6 leaves an order of magnitude over that and is far below any real fault:
    /// a rounding step taken in another place costs ~2⁻⁹ ≈ 2e-3 (the attention that rounded
    /// normalised probabilities measured 1.1e-3 on a Zen 4), a wrong layout ~1.
    public static let selfCheckBounds: [String: Double] = ["linear": 1e-6, "convolution": 1e-6, "attention": 1e-6]

    /// Runs a small linear layer (with bias and residual), a stride-2 convolution with asymmetric
    /// padding, and a masked grouped-head attention here and on `reference`, and compares them
    /// within `selfCheckBounds`. Tests pass a reference that computes something else, to see the
    /// reason text.
    public func selfCheck(against reference: ComputeBackend) -> SelfCheck {
        var seed: UInt32 = 12345
        func values(_ n: Int) -> [Float] {
            (0..<n).map { _ in
                seed = seed &* 1_664_525 &+ 1_013_904_223
                return Float(Int32(seed >> 16) % 33 - 16) / 16 * (seed & 0x100 == 0 ? 1 : 2)
            }
        }
        if let blas = reference as? OpenBLASBackend { blas.winograd = false }
        var errors: [(operation: String, error: Double, bound: Double)] = []
        func compare(_ operation: String, _ got: Tensor, _ want: Tensor) {
            errors.append((operation, Self.relativeL2(got, want), Self.selfCheckBounds[operation] ?? 0))
        }
        do {
            let x = Tensor(shape: [37, 45], values: values(37 * 45)), w = Weight(Tensor(shape: [29, 45], values: values(29 * 45)))
            let b = Tensor(shape: [29], values: values(29)), r = Tensor(shape: [37, 29], values: values(37 * 29))
            compare("linear", try linear(x, weight: w, bias: b, residual: r), reference.linear(x, weight: w, bias: b, residual: r))
            let xc = Tensor(shape: [2, 5, 7, 6], values: values(2 * 5 * 7 * 6))
            let wc = Weight(Tensor(shape: [4, 5, 3, 3], values: values(4 * 5 * 9)))
            let bc = Tensor(shape: [4], values: values(4))
            let pad = Padding2D(top: 0, left: 1, bottom: 1, right: 0)
            compare("convolution", try conv2d(xc, weight: wc, bias: bc, stride: 2, padding: pad),
                    reference.conv2d(xc, weight: wc, bias: bc, stride: 2, padding: pad))
            // two query heads sharing one K/V head, a causal -inf mask
            let (lq, lk, d) = (6, 6, 8)
            let q = Tensor(shape: [1, lq, 2 * d], values: values(lq * 2 * d))
            let k = Tensor(shape: [1, lk, d], values: values(lk * d)), v = Tensor(shape: [1, lk, d], values: values(lk * d))
            let mask = AttentionMask.shared(Tensor(shape: [lq, lk], values: (0..<(lq * lk)).map { $0 % lk > $0 / lk ? -Float.infinity : 0 }))
            compare("attention", try attention(q: q, k: k, v: v, heads: 2, kvHeads: 1, scale: 0.25, mask: mask),
                    reference.attention(q: q, k: k, v: v, heads: 2, kvHeads: 1, scale: 0.25, mask: mask))
        } catch {
            return SelfCheck(reason: "\(dataType) off: \(error)", errors: errors)
        }
        let failed = errors.first { !($0.error <= $0.bound) }
        return SelfCheck(reason: failed.map { String(format: "\(dataType) off: self-check \($0.operation) %.1e > %.1e", $0.error, $0.bound) },
                         errors: errors)
    }

    private static func relativeL2(_ a: Tensor, _ b: Tensor) -> Double {
        guard a.shape == b.shape else { return .infinity }
        var err = 0.0, norm = 0.0
        for i in 0..<a.count {
            let d = Double(a.pointer[i]) - Double(b.pointer[i])
            err += d * d
            norm += Double(b.pointer[i]) * Double(b.pointer[i])
        }
        return (err / max(norm, 1e-30)).squareRoot()
    }

    // MARK: descriptors and primitives

    private struct Primitive {
        let handle: dnnl_primitive_t
        let src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t, dst: dnnl_memory_desc_t
    }

    private func setUp() throws {
        if engine != nil { return }
        (engine, stream) = try OneDNNCPU.makeEngineAndStream()
    }

    private static func desc(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var d = dims.map(Int64.init)
        dnnl_memory_desc_init_by_tag(&md, Int32(d.count), &d, type, tag)
        return md
    }

    private static func desc(_ dims: [Int], strides: [Int], _ type: dnnl_data_type_t) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var d = dims.map(Int64.init), s = strides.map(Int64.init)
        dnnl_memory_desc_init_by_strides(&md, Int32(d.count), &d, type, &s)
        return md
    }

    private static func same(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
        var a = a, b = b
        return dnnl_memory_desc_equal(&a, &b) != 0
    }

    /// Builds the primitive for an operation descriptor, the residual (if any) added as a
    /// binary post-op, and remembers the layouts it chose.
    private func create(_ key: String, residual: dnnl_memory_desc_t?, outputScale: Float? = nil,
                        _ makeDesc: (UnsafeMutableRawPointer) -> dnnl_status_t, descSize: Int) throws -> Primitive {
        uses += 1
        if let entry = primitives[key] {
            primitives[key] = (entry.primitive, uses)
            return entry.primitive
        }
        try setUp()
        let opDesc = UnsafeMutableRawPointer.allocate(byteCount: descSize, alignment: 16)
        defer { opDesc.deallocate() }
        guard makeDesc(opDesc) == dnnl_success else { throw Failure(description: "oneDNN: \(key) descriptor refused") }
        var attr: dnnl_primitive_attr_t?
        dnnl_primitive_attr_create(&attr)
        defer { dnnl_primitive_attr_destroy(attr) }
        if var outputScale {
            guard dnnl_primitive_attr_set_output_scales(attr, 1, 0, &outputScale) == dnnl_success else {
                throw Failure(description: "oneDNN: output scale refused for \(key)")
            }
        }
        if var residual {
            var ops: dnnl_post_ops_t?
            dnnl_post_ops_create(&ops)
            defer { dnnl_post_ops_destroy(ops) }
            guard dnnl_post_ops_append_binary(ops, dnnl_binary_add, &residual) == dnnl_success,
                  dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success else {
                throw Failure(description: "oneDNN: residual post-op refused for \(key)")
            }
        }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, opDesc, attr, engine, nil) == dnnl_success, let pd else {
            throw Failure(description: "oneDNN: \(key) is not implemented for this CPU")
        }
        defer { dnnl_primitive_desc_destroy(pd) }
        var handle: dnnl_primitive_t?
        guard dnnl_primitive_create(&handle, pd) == dnnl_success, let handle else {
            throw Failure(description: "oneDNN: cannot create \(key)")
        }
        let p = Primitive(handle: handle,
                          src: dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0).pointee,
                          weights: dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0).pointee,
                          dst: dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0).pointee)
        if primitives.count >= primitiveCapacity, let oldest = primitives.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            dnnl_primitive_destroy(oldest.value.primitive.handle)
            primitives[oldest.key] = nil
        }
        primitives[key] = (p, uses)
        return p
    }

    // MARK: memory

    /// A oneDNN memory object over `pointer` (not owned), destroyed with this value.
    private final class Memory {
        var handle: dnnl_memory_t?
        init(_ md: dnnl_memory_desc_t, _ engine: dnnl_engine_t?, _ pointer: UnsafeMutableRawPointer) {
            var md = md
            dnnl_memory_create(&handle, &md, engine, pointer)
        }
        deinit { dnnl_memory_destroy(handle) }
    }

    /// A buffer for `md`, 64-byte aligned.
    /// Large ones come from and go back to the tensors' pool (`BufferPool`): activation copies,
    /// blocked layouts and streamed weight blocks have the same sizes call after call.
    fileprivate final class Buffer {
        let pointer: UnsafeMutableRawPointer
        let bytes: Int
        private let allocated: Int
        init(_ md: dnnl_memory_desc_t) {
            var md = md
            bytes = max(Int(dnnl_memory_desc_get_size(&md)), 1)
            allocated = (bytes + 63) / 64 * 64
            if let reused = TensorStorage.pool.take(allocated) {
                pointer = reused
            } else {
                var fresh: UnsafeMutableRawPointer?
                guard posix_memalign(&fresh, 64, allocated) == 0, let fresh else {
                    fatalError("out of memory allocating \(allocated) bytes for oneDNN")
                }
                pointer = fresh
            }
        }
        deinit { TensorStorage.pool.give(pointer, allocated) }
    }

    private func reorder(from: dnnl_memory_desc_t, _ src: UnsafeMutableRawPointer,
                         to: dnnl_memory_desc_t, _ dst: UnsafeMutableRawPointer) throws {
        var f = from, t = to
        var pd: dnnl_primitive_desc_t?
        guard dnnl_reorder_primitive_desc_create(&pd, &f, engine, &t, engine, nil) == dnnl_success, let pd else {
            throw Failure(description: "oneDNN: reorder refused")
        }
        defer { dnnl_primitive_desc_destroy(pd) }
        var r: dnnl_primitive_t?
        guard dnnl_primitive_create(&r, pd) == dnnl_success, let r else { throw Failure(description: "oneDNN: reorder") }
        defer { dnnl_primitive_destroy(r) }
        let a = Memory(from, engine, src), b = Memory(to, engine, dst)
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: a.handle), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: b.handle)]
        guard dnnl_primitive_execute(r, stream, 2, &args) == dnnl_success, dnnl_stream_wait(stream) == dnnl_success else {
            throw Failure(description: "oneDNN: reorder failed")
        }
    }

    /// `t` in bf16 (a fresh plain buffer) when computing in bf16; nil in float32, where the
    /// primitives read `t` itself.
    private func bf16Activations(_ t: Tensor) -> Buffer? {
        guard dataType == .bf16 else { return nil }
        let buffer = Buffer(Self.desc([t.count], dnnl_bf16, dnnl_a))
        let src = t.pointer, dst = buffer.pointer.assumingMemoryBound(to: UInt16.self)
        parallelFor(t.count, grain: 1 << 16) { r in kk_f32_to_bf16(src + r.lowerBound, dst + r.lowerBound, r.count) }
        return buffer
    }

    /// A weight in the compute type and the primitive's layout, made once and kept.
    final class PreparedWeight: WeightForm {
        fileprivate let md: dnnl_memory_desc_t
        fileprivate let buffer: Buffer
        var bytes: Int { buffer.bytes }
        fileprivate init(md: dnnl_memory_desc_t, buffer: Buffer) { self.md = md; self.buffer = buffer }
    }

    /// Rows `rows` of `weight` (stored [rows, inner], any dtype) into `dst` in the compute type,
    /// row-major, in parallel; bf16 goes through `scratch` (float32, room for the rows).
    private func convert(_ weight: Weight, rows: Range<Int>, into dst: UnsafeMutableRawPointer,
                         scratch: UnsafeMutablePointer<Float>?) {
        let inner = weight.count / weight.shape[0]
        if let scratch {
            let d = dst.assumingMemoryBound(to: UInt16.self)
            parallelFor(rows.count, grain: 8) { rr in
                weight.convertRowsToBF16((rows.lowerBound + rr.lowerBound)..<(rows.lowerBound + rr.upperBound),
                                         into: d + rr.lowerBound * inner, scratch: scratch + rr.lowerBound * inner)
            }
        } else {
            let d = dst.assumingMemoryBound(to: Float.self)
            parallelFor(rows.count, grain: 8) { rr in
                weight.convertRows((rows.lowerBound + rr.lowerBound)..<(rows.lowerBound + rr.upperBound), into: d + rr.lowerBound * inner)
            }
        }
    }

    /// `weight` (stored [rows, inner] row-major, any dtype) in the layout `md`: converted row
    /// block by row block into the plain layout `plain`, then reordered if `md` differs.
    private func prepare(_ weight: Weight, plain: dnnl_memory_desc_t, as md: dnnl_memory_desc_t) throws -> PreparedWeight {
        let rows = weight.shape[0], inner = weight.count / rows
        let plainBuffer = Buffer(plain)
        let block = max(1, min(rows, (16 << 20) / max(inner * 4, 1)))
        let scratch = dataType == .bf16 ? UnsafeMutablePointer<Float>.allocate(capacity: block * inner) : nil
        defer { scratch?.deallocate() }
        var r0 = 0
        while r0 < rows {
            let n = min(block, rows - r0)
            convert(weight, rows: r0..<(r0 + n), into: plainBuffer.pointer + r0 * inner * elementBytes, scratch: scratch)
            r0 += n
        }
        // The prepared form replaces the mapped source from now on: drop its pages.
        weight.releaseSourcePages()
        if Self.same(plain, md) { return PreparedWeight(md: md, buffer: plainBuffer) }
        let packed = Buffer(md)
        try reorder(from: plain, plainBuffer.pointer, to: md, packed.pointer)
        return PreparedWeight(md: md, buffer: packed)
    }

    /// The prepared form of `weight` for primitive `p`: kept on the weight after the first call;
    /// if a later shape's primitive wants another layout, a temporary reorder of that form.
    private func weights(_ weight: Weight, plain: dnnl_memory_desc_t, for p: Primitive) throws -> (PreparedWeight, Buffer?) {
        let form = try weight.prepared("onednn.\(dataType.rawValue)") { try prepare(weight, plain: plain, as: p.weights) }
        guard let kept = form as? PreparedWeight else { throw Failure(description: "oneDNN: weight prepared by another backend") }
        if Self.same(kept.md, p.weights) { return (kept, nil) }
        let temp = Buffer(p.weights)
        try reorder(from: kept.md, kept.buffer.pointer, to: p.weights, temp.pointer)
        return (kept, temp)
    }

    private func execute(_ p: Primitive, _ args: [(Int32, Memory)]) throws {
        var a = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1.handle) }
        guard dnnl_primitive_execute(p.handle, stream, Int32(a.count), &a) == dnnl_success,
              dnnl_stream_wait(stream) == dnnl_success else {
            throw Failure(description: "oneDNN: primitive failed")
        }
    }

    /// The execution argument of the first post-op's second input (DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1).
    private static let residualArg = Int32(DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE) | Int32(DNNL_ARG_SRC_1)

    // MARK: operations

    /// `x[..., K] · Wᵀ + bias + residual` with W [N, K]; residual has the output's shape.
    public func linear(_ x: Tensor, weight: Weight, bias: Tensor?, residual: Tensor? = nil) throws -> Tensor {
        precondition(weight.shape.count == 2, "linear weight must be 2-D, got \(weight.shape)")
        let n = weight.shape[0], k = weight.shape[1]
        precondition(x.shape.last == k, "linear: input \(x.shape) does not end in \(k)")
        if let bias { precondition(bias.count == n, "linear: bias \(bias.shape) for \(n) outputs") }
        let m = x.count / k
        if let residual { precondition(residual.count == m * n, "linear: residual \(residual.shape) for \(m)×\(n) outputs") }
        var outShape = x.shape
        outShape[outShape.count - 1] = n
        lock.lock(); defer { lock.unlock() }
        if weight.usedOncePerRun || weight.isInt8 {
            return try streamedLinear(x, weight: weight, bias: bias, residual: residual, m: m, k: k, n: n, outShape: outShape)
        }
        let srcMD = Self.desc([m, k], dnnlType, dnnl_ab)
        let plainW = Self.desc([k, n], dnnlType, dnnl_ba)  // PyTorch's [N, K] row-major
        let biasMD = Self.desc([1, n], dnnl_f32, dnnl_ab), dstMD = Self.desc([m, n], dnnl_f32, dnnl_ab)
        let key = "matmul \(dataType) \(m)×\(k)×\(n) bias:\(bias != nil) residual:\(residual != nil)"
        let p = try create(key, residual: residual != nil ? dstMD : nil, { raw in
            var s = srcMD, w = Self.desc([k, n], dnnlType, dnnl_format_tag_any), b = biasMD, d = dstMD
            let md = raw.assumingMemoryBound(to: dnnl_matmul_desc_t.self)
            return bias != nil ? dnnl_matmul_desc_init(md, &s, &w, &b, &d) : dnnl_matmul_desc_init(md, &s, &w, nil, &d)
        }, descSize: MemoryLayout<dnnl_matmul_desc_t>.size)
        let (kept, temp) = try weights(weight, plain: plainW, for: p)
        let src = bf16Activations(x)
        let y = Tensor(shape: outShape, zeroed: false)
        var args: [(Int32, Memory)] = [
            (DNNL_ARG_SRC, Memory(srcMD, engine, src?.pointer ?? UnsafeMutableRawPointer(x.pointer))),
            (DNNL_ARG_WEIGHTS, Memory(p.weights, engine, temp?.pointer ?? kept.buffer.pointer)),
            (DNNL_ARG_DST, Memory(dstMD, engine, UnsafeMutableRawPointer(y.pointer))),
        ]
        if let bias { args.append((DNNL_ARG_BIAS, Memory(biasMD, engine, UnsafeMutableRawPointer(bias.pointer)))) }
        if let residual { args.append((Self.residualArg, Memory(dstMD, engine, UnsafeMutableRawPointer(residual.pointer)))) }
        try execute(p, args)
        return y
    }

    /// Bytes of converted weight rows one `streamedLinear` block holds (16 MiB: 2,048 rows of
    /// a 4,096-wide bf16 matrix, a GEMM large enough to run near peak at 256 tokens).
    public var streamBlockBytes = 16 << 20

    /// `linear` for a weight that is not kept in a prepared form — used once per run (the text
    /// encoder's: keeping a converted copy of 6B parameters would cost 12–25 GB, and preparing
    /// one per prompt costs a conversion *and* a reorder) or stored as int8 (a kept copy would
    /// undo the quantization's saving). Blocks of output rows of W are converted (fp16 → compute
    /// type, or int8 · scale) into one small buffer in the plain [N, K] layout and multiplied in
    /// by a primitive that reads that layout as it is; each block writes its own columns of the
    /// output, with its slice of the bias and of the residual.
    private func streamedLinear(_ x: Tensor, weight: Weight, bias: Tensor?, residual: Tensor?,
                                m: Int, k: Int, n: Int, outShape: [Int]) throws -> Tensor {
        streamedCalls += 1
        // A weight already stored as bf16 (a mapped bf16 cache) is read by the primitive as it
        // is: one product over the whole matrix, no conversion.
        if dataType == .bf16, case .mapped(let mapped) = weight.storage, mapped.dtype == .bf16 {
            let srcMD = Self.desc([m, k], dnnl_bf16, dnnl_ab), wMD = Self.desc([k, n], dnnl_bf16, dnnl_ba)
            let dstMD = Self.desc([m, n], dnnl_f32, dnnl_ab), biasMD = Self.desc([1, n], dnnl_f32, dnnl_ab)
            let key = "mapped bf16 matmul \(m)×\(k)×\(n) bias:\(bias != nil) residual:\(residual != nil)"
            let p = try create(key, residual: residual != nil ? dstMD : nil, { raw in
                var s = srcMD, w = wMD, b = biasMD, d = dstMD
                let md = raw.assumingMemoryBound(to: dnnl_matmul_desc_t.self)
                return bias != nil ? dnnl_matmul_desc_init(md, &s, &w, &b, &d) : dnnl_matmul_desc_init(md, &s, &w, nil, &d)
            }, descSize: MemoryLayout<dnnl_matmul_desc_t>.size)
            let src = bf16Activations(x)
            let y = Tensor(shape: outShape, zeroed: false)
            var args: [(Int32, Memory)] = [
                (DNNL_ARG_SRC, Memory(srcMD, engine, src!.pointer)),
                (DNNL_ARG_WEIGHTS, Memory(wMD, engine, UnsafeMutableRawPointer(mutating: mapped.data))),
                (DNNL_ARG_DST, Memory(dstMD, engine, UnsafeMutableRawPointer(y.pointer))),
            ]
            if let bias { args.append((DNNL_ARG_BIAS, Memory(biasMD, engine, UnsafeMutableRawPointer(bias.pointer)))) }
            if let residual { args.append((Self.residualArg, Memory(dstMD, engine, UnsafeMutableRawPointer(residual.pointer)))) }
            try execute(p, args)
            return y
        }
        let blockRows = max(1, min(n, streamBlockBytes / max(1, k * elementBytes)))
        let srcMD = Self.desc([m, k], dnnlType, dnnl_ab)
        let src = bf16Activations(x)
        let y = Tensor(shape: outShape, zeroed: false)
        let block = Buffer(Self.desc([blockRows * k], dnnlType, dnnl_a))
        let scratch = dataType == .bf16 ? UnsafeMutablePointer<Float>.allocate(capacity: blockRows * k) : nil
        defer { scratch?.deallocate() }
        var r0 = 0
        while r0 < n {
            let rows = min(blockRows, n - r0)
            convert(weight, rows: r0..<(r0 + rows), into: block.pointer, scratch: scratch)
            let wMD = Self.desc([k, rows], dnnlType, dnnl_ba)
            let dstMD = Self.desc([m, rows], strides: [n, 1], dnnl_f32), biasMD = Self.desc([1, rows], dnnl_f32, dnnl_ab)
            let key = "streamed matmul \(dataType) \(m)×\(k)×\(rows) of \(n) bias:\(bias != nil) residual:\(residual != nil)"
            let p = try create(key, residual: residual != nil ? dstMD : nil, { raw in
                var s = srcMD, w = wMD, b = biasMD, d = dstMD
                let md = raw.assumingMemoryBound(to: dnnl_matmul_desc_t.self)
                return bias != nil ? dnnl_matmul_desc_init(md, &s, &w, &b, &d) : dnnl_matmul_desc_init(md, &s, &w, nil, &d)
            }, descSize: MemoryLayout<dnnl_matmul_desc_t>.size)
            var args: [(Int32, Memory)] = [
                (DNNL_ARG_SRC, Memory(srcMD, engine, src?.pointer ?? UnsafeMutableRawPointer(x.pointer))),
                (DNNL_ARG_WEIGHTS, Memory(wMD, engine, block.pointer)),
                (DNNL_ARG_DST, Memory(dstMD, engine, UnsafeMutableRawPointer(y.pointer + r0))),
            ]
            if let bias { args.append((DNNL_ARG_BIAS, Memory(biasMD, engine, UnsafeMutableRawPointer(bias.pointer + r0)))) }
            if let residual { args.append((Self.residualArg, Memory(dstMD, engine, UnsafeMutableRawPointer(residual.pointer + r0)))) }
            try execute(p, args)
            r0 += rows
        }
        return y
    }

    /// 2-D convolution, NCHW float32 in and out, weight [Cout, Cin, kh, kw].
    public func conv2d(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) throws -> Tensor {
        let s = Conv2DShape(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        let (b, cin, h, w) = (s.batch, s.inChannels, s.height, s.width)
        let (cout, kh, kw, oh, ow) = (s.outChannels, s.kernelHeight, s.kernelWidth, s.outHeight, s.outWidth)
        if let bias { precondition(bias.count == cout, "conv2d: bias \(bias.shape) for \(cout) outputs") }
        lock.lock(); defer { lock.unlock() }
        let plainSrc = Self.desc([b, cin, h, w], dnnlType, dnnl_nchw)
        let plainW = Self.desc([cout, cin, kh, kw], dnnlType, dnnl_oihw)
        let plainDst = Self.desc([b, cout, oh, ow], dnnl_f32, dnnl_nchw), biasMD = Self.desc([cout], dnnl_f32, dnnl_a)
        let key = "conv \(dataType) \(x.shape)→\(cout)×\(kh)×\(kw) s\(stride) p\(padding.top),\(padding.left),\(padding.bottom),\(padding.right) bias:\(bias != nil)"
        let p = try create(key, residual: nil, { raw in
            var s = Self.desc([b, cin, h, w], dnnlType, dnnl_format_tag_any)
            var wt = Self.desc([cout, cin, kh, kw], dnnlType, dnnl_format_tag_any)
            var d = Self.desc([b, cout, oh, ow], dnnl_f32, dnnl_format_tag_any), bm = biasMD
            var strides: [Int64] = [Int64(stride), Int64(stride)]
            var padL: [Int64] = [Int64(padding.top), Int64(padding.left)], padR: [Int64] = [Int64(padding.bottom), Int64(padding.right)]
            let cd = raw.assumingMemoryBound(to: dnnl_convolution_desc_t.self)
            return bias != nil
                ? dnnl_convolution_forward_desc_init(cd, dnnl_forward_inference, dnnl_convolution_direct, &s, &wt, &bm, &d,
                                                     &strides, &padL, &padR)
                : dnnl_convolution_forward_desc_init(cd, dnnl_forward_inference, dnnl_convolution_direct, &s, &wt, nil, &d,
                                                     &strides, &padL, &padR)
        }, descSize: MemoryLayout<dnnl_convolution_desc_t>.size)
        let (kept, temp) = try weights(weight, plain: plainW, for: p)
        // Source: in the compute type and the primitive's (blocked) layout — one reorder from the
        // float32 NCHW input, which converts as it copies — or, for a plain layout, converted in place.
        let src: Buffer?
        if Self.same(plainSrc, p.src) {
            src = bf16Activations(x)
        } else {
            let blocked = Buffer(p.src)
            try reorder(from: Self.desc([b, cin, h, w], dnnl_f32, dnnl_nchw), UnsafeMutableRawPointer(x.pointer), to: p.src, blocked.pointer)
            src = blocked
        }
        let y = Tensor(shape: [b, cout, oh, ow], zeroed: false)
        let dst = Self.same(plainDst, p.dst) ? nil : Buffer(p.dst)
        var args: [(Int32, Memory)] = [
            (DNNL_ARG_SRC, Memory(p.src, engine, src?.pointer ?? UnsafeMutableRawPointer(x.pointer))),
            (DNNL_ARG_WEIGHTS, Memory(p.weights, engine, temp?.pointer ?? kept.buffer.pointer)),
            (DNNL_ARG_DST, Memory(p.dst, engine, dst?.pointer ?? UnsafeMutableRawPointer(y.pointer))),
        ]
        if let bias { args.append((DNNL_ARG_BIAS, Memory(biasMD, engine, UnsafeMutableRawPointer(bias.pointer)))) }
        try execute(p, args)
        if let dst { try reorder(from: p.dst, dst.pointer, to: plainDst, UnsafeMutableRawPointer(y.pointer)) }
        return y
    }

    /// Query rows per task of the fused bf16 attention.
    static let fusedRowBlock = 64

    /// bf16 attention in one pass per block of 64 query rows (`kk_flash_attention_bf16`, AVX512-BF16
    /// dot products): scores, probabilities and the output accumulator stay in cache, with the
    /// rounding of torch's flash attention (`BF16Attention`). K and V are rounded and packed once
    /// per (batch item, K/V head); tasks (batch item, head, row block) split across the cores.
    public static func fusedBF16Attention(q: Tensor, k: Tensor, v: Tensor, shape: AttentionShape, scale: Float,
                                   mask: AttentionMask?) -> Tensor {
        let (b, lq, lk, d, heads, kvHeads) = (shape.batch, shape.queries, shape.keys, shape.headDim, shape.heads, shape.kvHeads)
        let qStride = heads * d, kvStride = kvHeads * d
        let kCount = kk_packed_keys_count(lk, d), vCount = kk_packed_values_count(lk, d)
        let kp = UnsafeMutablePointer<UInt16>.allocate(capacity: b * kvHeads * kCount)
        let vp = UnsafeMutablePointer<UInt16>.allocate(capacity: b * kvHeads * vCount)
        defer { kp.deallocate(); vp.deallocate() }
        let (kx, vx) = (k.pointer, v.pointer)
        parallelFor(b * kvHeads) { r in
            for i in r {
                let (bi, h) = (i / kvHeads, i % kvHeads)
                kk_pack_keys_bf16(kx + bi * lk * kvStride + h * d, lk, d, kvStride, kp + i * kCount)
                kk_pack_values_bf16(vx + bi * lk * kvStride + h * d, lk, d, kvStride, vp + i * vCount)
            }
        }
        let out = Tensor(shape: [b, lq, qStride], zeroed: false)
        let blocks = (lq + fusedRowBlock - 1) / fusedRowBlock
        let (qx, ox) = (q.pointer, out.pointer)
        parallelFor(b * heads * blocks) { r in
            for task in r {
                let bi = task / (heads * blocks), h = task / blocks % heads, q0 = task % blocks * fusedRowBlock
                let rows = min(fusedRowBlock, lq - q0), kv = bi * kvHeads + h / shape.group
                let m = mask.map { UnsafePointer($0.pointer(batch: bi) + q0 * lk) }
                kk_flash_attention_bf16(qx + (bi * lq + q0) * qStride + h * d, qStride, rows, kp + kv * kCount,
                                        vp + kv * vCount, lk, d, scale, m, lk, ox + (bi * lq + q0) * qStride + h * d, qStride)
            }
        }
        return out
    }

    /// Scaled dot-product attention, as `ComputeBackend.attention`. In bf16: the fused kernel
    /// (`fusedBF16Attention`, which needs AVX512-BF16 — every CPU oneDNN runs bf16 on has it). In
    /// float32, per batch item and chunk of queries: S = scale·Q·Kᵀ for every head in one batched
    /// matmul (the heads of a group share their K/V head by broadcasting), the mask added and
    /// softmax taken in float32, then O = P·V in a second batched matmul written straight into
    /// the output's head columns.
    public func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, scale: Float,
                          mask: AttentionMask?, scoreBudget: Int = 64 << 20) throws -> Tensor {
        let shape = AttentionShape(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, mask: mask)
        if dataType == .bf16 {
            guard kk_has_avx512_bf16() != 0 else { throw Failure(description: "oneDNN: bf16 attention needs AVX512-BF16") }
            return Self.fusedBF16Attention(q: q, k: k, v: v, shape: shape, scale: scale, mask: mask)
        }
        let (b, lq, lk, d, group) = (shape.batch, shape.queries, shape.keys, shape.headDim, shape.group)
        let qStride = heads * d, kvStride = kvHeads * d
        let chunk = max(1, min(lq, scoreBudget / max(1, heads * lk * 4)))
        lock.lock(); defer { lock.unlock() }
        try setUp()
        let out = Tensor(shape: [b, lq, heads * d], zeroed: false)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: heads * chunk * lk)
        defer { scores.deallocate() }
        var q0 = 0
        while q0 < lq {
            let rows = min(chunk, lq - q0)
            // [kvHeads, group, rows, ·] views of the [B, L, H·D] tensors; K and V broadcast over the group.
            let qmd = Self.desc([kvHeads, group, rows, d], strides: [group * d, d, qStride, 1], dnnl_f32)
            let kmd = Self.desc([kvHeads, 1, d, lk], strides: [d, d, 1, kvStride], dnnl_f32)
            let smd = Self.desc([kvHeads, group, rows, lk], dnnl_f32, dnnl_abcd)
            let vmd = Self.desc([kvHeads, 1, lk, d], strides: [d, d, kvStride, 1], dnnl_f32)
            let omd = Self.desc([kvHeads, group, rows, d], strides: [group * d, d, qStride, 1], dnnl_f32)
            let sizes = "\(dataType) \(kvHeads)×\(group)×\(rows)×\(d)·\(lk) strides \(qStride),\(kvStride)"
            let qk = try create("attention QKᵀ \(sizes) scale \(scale)", residual: nil, outputScale: scale, { raw in
                var s = qmd, w = kmd, dd = smd
                return dnnl_matmul_desc_init(raw.assumingMemoryBound(to: dnnl_matmul_desc_t.self), &s, &w, nil, &dd)
            }, descSize: MemoryLayout<dnnl_matmul_desc_t>.size)
            let pv = try create("attention PV \(sizes)", residual: nil, { raw in
                var s = smd, w = vmd, dd = omd
                return dnnl_matmul_desc_init(raw.assumingMemoryBound(to: dnnl_matmul_desc_t.self), &s, &w, nil, &dd)
            }, descSize: MemoryLayout<dnnl_matmul_desc_t>.size)
            for bi in 0..<b {
                try execute(qk, [(DNNL_ARG_SRC, Memory(qmd, engine, UnsafeMutableRawPointer(q.pointer + (bi * lq + q0) * qStride))),
                                 (DNNL_ARG_WEIGHTS, Memory(kmd, engine, UnsafeMutableRawPointer(k.pointer + bi * lk * kvStride))),
                                 (DNNL_ARG_DST, Memory(smd, engine, UnsafeMutableRawPointer(scores)))])
                let sp = scores
                if let m = mask?.pointer(batch: bi) {
                    parallelFor(heads * rows, grain: 16) { r in
                        for row in r {
                            let srow = sp + row * lk, mrow = m + (q0 + row % rows) * lk
                            for j in 0..<lk { srow[j] += mrow[j] }
                        }
                    }
                }
                parallelFor(heads * rows, grain: 16) { r in kk_softmax_rows(sp + r.lowerBound * lk, r.count, lk, lk) }
                try execute(pv, [(DNNL_ARG_SRC, Memory(smd, engine, UnsafeMutableRawPointer(scores))),
                                 (DNNL_ARG_WEIGHTS, Memory(vmd, engine, UnsafeMutableRawPointer(v.pointer + bi * lk * kvStride))),
                                 (DNNL_ARG_DST, Memory(omd, engine, UnsafeMutableRawPointer(out.pointer + (bi * lq + q0) * qStride)))])
            }
            q0 += rows
        }
        return out
    }
}
