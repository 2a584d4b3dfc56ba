import Foundation
import CKolorsKernels
import COpenBLAS

/// float32 compute on OpenBLAS (cblas_sgemm) plus our vectorised C kernels. With
/// `bf16Operands` every product (linear, convolution, attention, matmul) first rounds both
/// operands to bfloat16 (nearest even) and then sums in float32: the arithmetic of a bf16
/// matmul with fp32 accumulation, on CPUs that have no bf16 instructions.
public final class OpenBLASBackend: ComputeBackend, @unchecked Sendable {
    public let bf16Operands: Bool
    public var name: String { bf16Operands ? "bf16-operands-openblas" : "fp32-openblas" }

    /// Bytes of a mapped (fp16/bf16) weight converted to float32 per GEMM call in `linear`
    /// (64 MiB: 4096 rows of a 4096-wide matrix; large blocks keep the GEMM efficient).
    public var mappedChunkBytes = 64 << 20
    /// Bytes of attention scores held at once per worker thread.
    public var attentionScoreBudget = 32 << 20
    /// Bytes of im2col buffer per convolution call.
    public var im2colBudget = 64 << 20
    /// 3×3 stride-1 padding-1 convolutions use Winograd F(4×4, 3×3) (4× fewer multiplies;
    /// float32 error stays within the parity tolerances). Off: im2col + GEMM for every conv.
    /// `KOLORS_WINOGRAD=0` in the environment turns it off (for A/B measurements).
    public var winograd = ProcessInfo.processInfo.environment["KOLORS_WINOGRAD"] != "0"
    /// Bytes of Winograd transform buffers (input and product tiles) per convolution call.
    public var winogradBudget = 64 << 20

    public init(bf16Operands: Bool = false) { self.bf16Operands = bf16Operands }

    /// `t` as a product operand: itself, or rounded to bfloat16 values in bf16 mode.
    private func operand(_ t: Tensor) -> Tensor { bf16Operands ? roundedToBFloat16(t) : t }

    // MARK: linear

    public func linear(_ x: Tensor, weight: Weight, bias: Tensor?) -> Tensor {
        OpProfiler.shared.measure("linear") { linearImpl(x, weight: weight, bias: bias, residual: nil) }
    }

    /// The residual is the GEMM's starting C (β = 1), so adding it costs no extra pass.
    public func linear(_ x: Tensor, weight: Weight, bias: Tensor?, residual: Tensor) -> Tensor {
        OpProfiler.shared.measure("linear") { linearImpl(x, weight: weight, bias: bias, residual: residual) }
    }

    private func linearImpl(_ x: Tensor, weight: Weight, bias: Tensor?, residual: Tensor?) -> Tensor {
        precondition(weight.shape.count == 2, "linear weight must be 2-D, got \(weight.shape)")
        let x = operand(x)
        let n = weight.shape[0], k = weight.shape[1]
        precondition(x.shape.last == k, "linear: input \(x.shape) does not end in \(k)")
        let m = x.count / k
        var outShape = x.shape
        outShape[outShape.count - 1] = n
        let y = Tensor(shape: outShape, zeroed: false)
        if let residual { precondition(residual.count == m * n, "linear: residual \(residual.shape) for \(m)×\(n) outputs") }
        if let bias { precondition(bias.count == n, "linear: bias \(bias.shape) for \(n) outputs") }
        if bias != nil || residual != nil {
            // Start from the residual and/or the bias and accumulate (beta = 1).
            let yp = y.pointer, bp = bias?.pointer, rp = residual?.pointer
            parallelFor(m, grain: 64) { r in
                for i in r {
                    let row = yp + i * n
                    switch (rp, bp) {
                    case let (rp?, bp?): kk_add_bias_rows(rp + i * n, bp, row, 1, n)
                    case let (rp?, nil): row.update(from: rp + i * n, count: n)
                    case let (nil, bp?): row.update(from: bp, count: n)
                    case (nil, nil): break
                    }
                }
            }
        }
        let beta: Float = bias == nil && residual == nil ? 0 : 1
        switch weight.storage {
        case .float32(let w):
            let w = operand(w)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                        1, x.pointer, Int32(k), w.pointer, Int32(k), beta, y.pointer, Int32(n))
        case .mapped, .int8:
            // Convert a block of output rows of W at a time and multiply it in.
            let chunk = max(1, min(n, mappedChunkBytes / (k * 4)))
            let scratch = Tensor(shape: [chunk, k], zeroed: false)
            var r0 = 0
            while r0 < n {
                let rows = min(chunk, n - r0)
                let sp = scratch.pointer
                let round = bf16Operands
                parallelFor(rows, grain: 16) { rr in
                    weight.convertRows((r0 + rr.lowerBound)..<(r0 + rr.upperBound), into: sp + rr.lowerBound * k)
                    if round { kk_round_bf16(sp + rr.lowerBound * k, sp + rr.lowerBound * k, rr.count * k) }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(rows), Int32(k),
                            1, x.pointer, Int32(k), scratch.pointer, Int32(k), beta, y.pointer + r0, Int32(n))
                r0 += rows
            }
        }
        return y
    }

    // MARK: matmul

    public func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "matmul wants 2-D tensors")
        let m = a.shape[0], k = a.shape[1]
        let n = transposeB ? b.shape[0] : b.shape[1]
        precondition((transposeB ? b.shape[1] : b.shape[0]) == k, "matmul: \(a.shape) × \(b.shape)")
        let a = operand(a), b = operand(b)
        let c = Tensor(shape: [m, n], zeroed: false)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a.pointer, Int32(k), b.pointer, Int32(b.shape[1]),
                    0, c.pointer, Int32(n))
        return c
    }

    // MARK: conv2d

    public func conv2d(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        OpProfiler.shared.measure("conv2d") { conv2dImpl(x, weight: weight, bias: bias, stride: stride, padding: padding) }
    }

    private func conv2dImpl(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        let s = Conv2DShape(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        let (b, cin, h, w) = (s.batch, s.inChannels, s.height, s.width)
        let (cout, kh, kw, oh, ow) = (s.outChannels, s.kernelHeight, s.kernelWidth, s.outHeight, s.outWidth)
        let x = operand(x)
        let wf = operand(weight.float32())  // conv weights are small enough to keep float32
        if winogradApplies(kh: kh, kw: kw, stride: stride, padding: padding)
            && winogradPaysOff(batch: b, height: oh, width: ow, outChannels: cout) {
            return winogradConv(x, wf, bias, upsample: false)
        }
        let y = Tensor(shape: [b, cout, oh, ow], zeroed: false)
        let kdim = cin * kh * kw
        let npix = oh * ow
        let direct = kh == 1 && kw == 1 && stride == 1 && padding == .none
        // Rows per im2col block, bounded by the buffer budget.
        let rowsPerBlock = max(1, min(oh, im2colBudget / max(1, kdim * ow * 4)))
        let cols = direct ? nil : Tensor(shape: [kdim * rowsPerBlock * ow], zeroed: false)
        for bi in 0..<b {
            let xb = x.pointer + bi * cin * h * w
            let yb = y.pointer + bi * cout * npix
            if let bias {
                let bp = bias.pointer
                parallelFor(cout, grain: 8) { r in
                    for c in r { (yb + c * npix).update(repeating: bp[c], count: npix) }
                }
            }
            let beta: Float = bias == nil ? 0 : 1
            if direct {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(npix), Int32(cin),
                            1, wf.pointer, Int32(cin), xb, Int32(npix), beta, yb, Int32(npix))
                continue
            }
            var oy0 = 0
            while oy0 < oh {
                let oy1 = min(oh, oy0 + rowsPerBlock)
                let cp = cols!.pointer
                let (t, l) = (padding.top, padding.left)
                parallelFor(cin, grain: 4) { r in
                    kk_im2col(xb, cin, h, w, kh, kw, stride, stride, t, l, oh, ow, oy0, oy1,
                              r.lowerBound, r.upperBound, cp)
                }
                let blockPix = (oy1 - oy0) * ow
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(blockPix), Int32(kdim),
                            1, wf.pointer, Int32(kdim), cp, Int32(blockPix), beta, yb + oy0 * ow, Int32(npix))
                oy0 = oy1
            }
        }
        return y
    }

    public func conv2dUpsampled2x(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        guard x.rank == 4, weight.shape.count == 4,
              winogradApplies(kh: weight.shape[2], kw: weight.shape[3], stride: stride, padding: padding),
              winogradPaysOff(batch: x.shape[0], height: 2 * x.shape[2], width: 2 * x.shape[3], outChannels: weight.shape[0]) else {
            return conv2d(upsampleNearest(x, height: x.shape[2] * 2, width: x.shape[3] * 2), weight: weight,
                          bias: bias, stride: stride, padding: padding)
        }
        precondition(weight.shape[1] == x.shape[1], "conv2d: input has \(x.shape[1]) channels, weight expects \(weight.shape[1])")
        return OpProfiler.shared.measure("conv2d") { winogradConv(operand(x), operand(weight.float32()), bias, upsample: true) }
    }

    // MARK: Winograd F(4×4, 3×3)

    private func winogradApplies(kh: Int, kw: Int, stride: Int, padding: Padding2D) -> Bool {
        winograd && kh == 3 && kw == 3 && stride == 1 && padding == .symmetric(1)
    }

    /// The transformed kernels (36 · Cout · Cin floats, 4× the kernel) are rebuilt per call, so
    /// Winograd is used where the tiles outnumber half the output channels: everywhere in the
    /// VAE, not for the UNet's 1280-channel 32² convolutions (im2col is as fast there and the
    /// 236 MB of transformed kernels would only add to peak memory).
    private func winogradPaysOff(batch: Int, height: Int, width: Int, outChannels: Int) -> Bool {
        2 * batch * ((height + 3) / 4) * ((width + 3) / 4) >= outChannels
    }

    /// 3×3 convolution, stride 1, padding 1, of `x` (or of its 2× nearest upsampling) as 36
    /// GEMMs between transformed kernels and transformed input tiles, a block of tile rows at
    /// a time so the buffers stay within `winogradBudget`.
    private func winogradConv(_ x: Tensor, _ wf: Tensor, _ bias: Tensor?, upsample: Bool) -> Tensor {
        let (b, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = wf.shape[0]
        precondition(wf.shape == [cout, cin, 3, 3], "conv2d: weight \(wf.shape) for \(cin) input channels")
        if let bias { precondition(bias.count == cout, "conv2d: bias \(bias.shape) for \(cout) outputs") }
        let oh = upsample ? 2 * h : h, ow = upsample ? 2 * w : w
        let tilesX = (ow + 3) / 4, tilesY = (oh + 3) / 4
        let u = Tensor(shape: [36, cout, cin], zeroed: false)
        let up = u.pointer, wp = wf.pointer
        parallelFor(cout, grain: 8) { r in kk_winograd43_weights(wp, cout, cin, r.lowerBound, r.upperBound, up) }
        // Blocks of work: whole images together while they fit the budget (wider products),
        // else tile rows of one image.
        let tilesPerImage = tilesX * tilesY
        let capacity = max(tilesX, winogradBudget / max(1, 36 * (cin + cout) * 4))
        let imagesPerBlock = max(1, min(b, capacity / tilesPerImage))
        let rowsPerBlock = capacity >= tilesPerImage ? tilesY : max(1, capacity / tilesX)
        let maxColumns = imagesPerBlock * rowsPerBlock * tilesX
        let v = Tensor(shape: [36 * cin * maxColumns], zeroed: false)
        let m = Tensor(shape: [36 * cout * maxColumns], zeroed: false)
        let y = Tensor(shape: [b, cout, oh, ow], zeroed: false)
        let vp = v.pointer, mp = m.pointer, bp = bias?.pointer, xp = x.pointer, yp = y.pointer
        let split = max(1, EngineThreads.count)
        var b0 = 0
        while b0 < b {
            let b1 = min(b, b0 + imagesPerBlock)
            var ty0 = 0
            while ty0 < tilesY {
                let ty1 = min(tilesY, ty0 + rowsPerBlock)
                let perImage = (ty1 - ty0) * tilesX
                let ld = (b1 - b0) * perImage
                parallelFor(cin, grain: max(1, cin / (4 * split))) { r in
                    for bi in b0..<b1 {
                        kk_winograd43_input(xp + bi * cin * h * w, h, w, upsample ? 1 : 0, tilesX, ty0, ty1,
                                            r.lowerBound, r.upperBound, cin, vp, ld, (bi - b0) * perImage)
                    }
                }
                // The 36 products are independent: one per core at a time, single-threaded BLAS.
                withSingleThreadedBLAS(split > 1) {
                    parallelFor(36) { r in
                        for xi in r {
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(ld), Int32(cin),
                                        1, up + xi * cout * cin, Int32(cin), vp + xi * cin * ld, Int32(ld),
                                        0, mp + xi * cout * ld, Int32(ld))
                        }
                    }
                }
                parallelFor(cout, grain: max(1, cout / (4 * split))) { r in
                    for bi in b0..<b1 {
                        kk_winograd43_output(mp, ld, (bi - b0) * perImage, cout, tilesX, ty0, ty1, bp,
                                             r.lowerBound, r.upperBound, yp + bi * cout * oh * ow, oh, ow)
                    }
                }
                ty0 = ty1
            }
            b0 = b1
        }
        return y
    }

    // MARK: attention

    /// Worker count and query rows per chunk: the score buffer holds workers × chunk × keys
    /// floats, at most `attentionScoreBudget` bytes per worker whatever the sequence length.
    public func attentionWorkspace(batch: Int, heads: Int, queries: Int, keys: Int) -> (workers: Int, chunk: Int) {
        (min(EngineThreads.count, batch * heads), max(1, min(queries, attentionScoreBudget / max(1, keys * 4))))
    }

    public func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, scale: Float,
                          mask: AttentionMask?) -> Tensor {
        OpProfiler.shared.measure("attention") {
            attentionImpl(q: operand(q), k: operand(k), v: operand(v), heads: heads, kvHeads: kvHeads, scale: scale, mask: mask)
        }
    }

    private func attentionImpl(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, scale: Float,
                               mask: AttentionMask?) -> Tensor {
        let s = AttentionShape(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, mask: mask)
        let (b, lq, lk, d, group) = (s.batch, s.queries, s.keys, s.headDim, s.group)
        let qStride = heads * d, kvStride = kvHeads * d
        let out = Tensor(shape: [b, lq, heads * d], zeroed: false)
        let (workers, chunk) = attentionWorkspace(batch: b, heads: heads, queries: lq, keys: lk)
        // Independent (batch, head) pairs run on separate cores with single-threaded GEMMs: the
        // products are small (head dim 64) and BLAS's own threading loses to this split.
        let scores = Tensor(shape: [workers, chunk * lk], zeroed: false)
        let qp = q.pointer, kp = k.pointer, vp = v.pointer, op = out.pointer, sbase = scores.pointer
        let pairs = b * heads
        let perWorker = (pairs + workers - 1) / workers
        withSingleThreadedBLAS(workers > 1) {
            parallelFor(workers) { wr in
                for w in wr {
                    let sp = sbase + w * chunk * lk
                    for pair in (w * perWorker)..<min(pairs, (w + 1) * perWorker) {
                        let bi = pair / heads, h = pair % heads
                        let kvh = h / group
                        let qb = qp + bi * lq * qStride, kb = kp + bi * lk * kvStride
                        let vb = vp + bi * lk * kvStride, ob = op + bi * lq * qStride
                        let maskBase = mask?.pointer(batch: bi)
                        var q0 = 0
                        while q0 < lq {
                            let rows = min(chunk, lq - q0)
                            // S = scale · Q_h K_hᵀ
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(lk), Int32(d),
                                        scale, qb + q0 * qStride + h * d, Int32(qStride), kb + kvh * d, Int32(kvStride),
                                        0, sp, Int32(lk))
                            if let maskBase {
                                for i in 0..<rows {
                                    let mrow = maskBase + (q0 + i) * lk, srow = sp + i * lk
                                    for j in 0..<lk { srow[j] += mrow[j] }
                                }
                            }
                            let o = ob + q0 * qStride + h * d
                            if bf16Operands {
                                BF16Attention.probabilitiesTimesValues(scores: sp, rows: rows, keys: lk,
                                                                      values: vb + kvh * d, valueStride: kvStride,
                                                                      headDim: d, out: o, outStride: qStride)
                            } else {
                                kk_softmax_rows(sp, rows, lk, lk)
                                // O_h = S · V_h
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(d), Int32(lk),
                                            1, sp, Int32(lk), vb + kvh * d, Int32(kvStride), 0, o, Int32(qStride))
                            }
                            q0 += rows
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Attention in bf16 as diffusers runs it on a CPU: torch's flash attention
/// (`aten/src/ATen/native/cpu/FlashAttentionKernel.cpp`, which `scaled_dot_product_attention`
/// picks for bf16 on the CPU) computes the scores S = scale·Q·Kᵀ in float32 from bf16 operands,
/// adds the mask, and walks the keys in blocks of 512 with an online softmax: each block's
/// exp(S − running max) is rounded to bf16 **unnormalised** and multiplied with V (float32 sums)
/// into a float32 accumulator, which is rescaled by exp(old max − new max) when the maximum
/// moves; the sum of the unrounded exponentials (float32) divides at the end, as a multiplication
/// by its reciprocal. Rounding the *normalised* probabilities instead — or not at all — lands
/// 2–3e-3 (relative L2) from torch's output; this order agrees with it to the last bf16 bit on
/// 82–94 % of the outputs (the rest: torch's faster exp, summation order, its bf16 output).
/// Both the float32-BLAS emulation and oneDNN's bf16 path take these rounding points.
public enum BF16Attention {
    /// torch's `kv_split_size` for CPU flash attention (every query split uses 512).
    public static let keyBlock = 512

    /// Number of key blocks for `keys` keys.
    public static func blocks(keys: Int) -> Int { (keys + keyBlock - 1) / keyBlock }

    /// `out[rows, headDim]` (rows `outStride` apart) = softmax(scores)·V with torch's bf16
    /// rounding points, for one head: `scores` [rows, keys] (contiguous, scaled and masked;
    /// overwritten), `values` [keys, headDim] rows `valueStride` apart, already bf16-rounded.
    static func probabilitiesTimesValues(scores: UnsafeMutablePointer<Float>, rows: Int, keys: Int,
                                         values: UnsafePointer<Float>, valueStride: Int, headDim d: Int,
                                         out: UnsafeMutablePointer<Float>, outStride: Int) {
        let nb = blocks(keys: keys)
        let rescale = UnsafeMutablePointer<Float>.allocate(capacity: rows * nb)
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        defer { rescale.deallocate(); sums.deallocate() }
        kk_softmax_bf16_blocks(scores, rows, keys, keys, keyBlock, nil, 0, rescale, sums)
        for b in 0..<nb {
            let k0 = b * keyBlock, n = min(keyBlock, keys - k0)
            if b > 0 { scaleRows(out, rows: rows, width: d, stride: outStride) { rescale[$0 * nb + b] } }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(d), Int32(n),
                        1, scores + k0, Int32(keys), values + k0 * valueStride, Int32(valueStride),
                        b == 0 ? 0 : 1, out, Int32(outStride))
        }
        scaleRows(out, rows: rows, width: d, stride: outStride) { 1 / sums[$0] }
    }

    /// Multiplies row i of `x` (`width` values, rows `stride` apart) by `factor(i)`; rows whose
    /// factor is 1 are left alone.
    static func scaleRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int, factor: (Int) -> Float) {
        for i in 0..<rows {
            let f = factor(i)
            if f != 1 { cblas_sscal(Int32(width), f, x + i * stride, 1) }
        }
    }
}

/// Runs `body` with OpenBLAS limited to one thread (so several threads can each run their own
/// small GEMMs), restoring the engine's thread count afterwards.
func withSingleThreadedBLAS<T>(_ enabled: Bool, _ body: () throws -> T) rethrows -> T {
    guard enabled else { return try body() }
    openblas_set_num_threads(1)
    defer { openblas_set_num_threads(Int32(EngineThreads.count)) }
    return try body()
}
