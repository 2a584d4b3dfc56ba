import CKolorsKernels

/// Concatenates tensors along `dim` (all other dimensions equal).
public func concat(_ tensors: [Tensor], dim: Int) -> Tensor {
    OpProfiler.shared.measure("concat/layout") { concatImpl(tensors, dim: dim) }
}

func concatImpl(_ tensors: [Tensor], dim: Int) -> Tensor {
    precondition(!tensors.isEmpty, "concat of nothing")
    let rank = tensors[0].rank
    let d = dim < 0 ? rank + dim : dim
    for t in tensors {
        precondition(t.rank == rank, "concat: ranks differ")
        for i in 0..<rank where i != d { precondition(t.shape[i] == tensors[0].shape[i], "concat: \(t.shape) vs \(tensors[0].shape) on dim \(d)") }
    }
    var shape = tensors[0].shape
    shape[d] = tensors.reduce(0) { $0 + $1.shape[d] }
    let outer = shape[..<d].reduce(1, *)
    let inner = shape[(d + 1)...].reduce(1, *)
    let y = Tensor(shape: shape, zeroed: false)
    let rowOut = shape[d] * inner
    var offset = 0
    for t in tensors {
        let rowIn = t.shape[d] * inner
        let src = t.pointer, dst = y.pointer + offset
        parallelFor(outer, grain: 8) { r in
            for o in r { (dst + o * rowOut).update(from: src + o * rowIn, count: rowIn) }
        }
        offset += rowIn
    }
    return y
}

/// Columns `range` of the last dimension, copied out.
public func sliceLastDim(_ x: Tensor, _ range: Range<Int>) -> Tensor {
    let width = x.shape[x.rank - 1]
    precondition(range.lowerBound >= 0 && range.upperBound <= width, "slice \(range) of last dim \(width)")
    let rows = x.count / width
    var shape = x.shape
    shape[shape.count - 1] = range.count
    let y = Tensor(shape: shape, zeroed: false)
    let src = x.pointer, dst = y.pointer, n = range.count, lo = range.lowerBound
    parallelFor(rows, grain: 64) { r in
        for i in r { (dst + i * n).update(from: src + i * width + lo, count: n) }
    }
    return y
}

/// Nearest-neighbour resize of an NCHW tensor (PyTorch's `mode="nearest"`:
/// source index = floor(dst · in / out)).
public func upsampleNearest(_ x: Tensor, height oh: Int, width ow: Int) -> Tensor {
    precondition(x.rank == 4, "upsampleNearest wants NCHW")
    let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let y = Tensor(shape: [b, c, oh, ow], zeroed: false)
    let src = x.pointer, dst = y.pointer
    parallelFor(b * c, grain: 4) { r in
        kk_upsample_nearest(src + r.lowerBound * h * w, r.count, h, w, oh, ow, dst + r.lowerBound * oh * ow)
    }
    return y
}

/// [B, C, H, W] → [B, H·W, C] (image to token sequence, row-major over H then W).
public func nchwToTokens(_ x: Tensor) -> Tensor {
    OpProfiler.shared.measure("concat/layout") { nchwToTokensImpl(x) }
}

func nchwToTokensImpl(_ x: Tensor) -> Tensor {
    let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let y = Tensor(shape: [b, h * w, c], zeroed: false)
    for bi in 0..<b {
        kk_transpose(x.pointer + bi * c * h * w, y.pointer + bi * c * h * w, c, h * w)
    }
    return y
}

/// [B, H·W, C] → [B, C, H, W].
public func tokensToNCHW(_ x: Tensor, height h: Int, width w: Int) -> Tensor {
    OpProfiler.shared.measure("concat/layout") { tokensToNCHWImpl(x, height: h, width: w) }
}

func tokensToNCHWImpl(_ x: Tensor, height h: Int, width w: Int) -> Tensor {
    let (b, n, c) = (x.shape[0], x.shape[1], x.shape[2])
    precondition(n == h * w, "tokensToNCHW: \(n) tokens for \(h)×\(w)")
    let y = Tensor(shape: [b, c, h, w], zeroed: false)
    for bi in 0..<b {
        kk_transpose(x.pointer + bi * n * c, y.pointer + bi * n * c, n, c)
    }
    return y
}

/// Swaps the first two dimensions of a rank-3 tensor ([S, B, H] ↔ [B, S, H]).
public func swapLeadingDims(_ x: Tensor) -> Tensor {
    let (a, b, c) = (x.shape[0], x.shape[1], x.shape[2])
    let y = Tensor(shape: [b, a, c], zeroed: false)
    let src = x.pointer, dst = y.pointer
    parallelFor(a, grain: 8) { r in
        for i in r {
            for j in 0..<b { (dst + (j * a + i) * c).update(from: src + (i * b + j) * c, count: c) }
        }
    }
    return y
}
