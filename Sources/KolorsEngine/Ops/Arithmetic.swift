import CKolorsKernels

/// a + b (same shape).
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.count == b.count, "add: \(a.shape) + \(b.shape)")
    let y = Tensor(shape: a.shape, zeroed: false)
    let pa = a.pointer, pb = b.pointer, py = y.pointer
    parallelFor(a.count, grain: 1 << 15) { r in kk_add(pa + r.lowerBound, pb + r.lowerBound, py + r.lowerBound, r.count) }
    return y
}

/// a += b (same shape), in a's storage. Used for residual connections.
public func addInPlace(_ a: Tensor, _ b: Tensor) {
    OpProfiler.shared.measure("add") { addInPlaceImpl(a, b) }
}

func addInPlaceImpl(_ a: Tensor, _ b: Tensor) {
    precondition(a.count == b.count, "addInPlace: \(a.shape) += \(b.shape)")
    let pa = a.pointer, pb = b.pointer
    parallelFor(a.count, grain: 1 << 15) { r in kk_add(pa + r.lowerBound, pb + r.lowerBound, pa + r.lowerBound, r.count) }
}

/// a · b element-wise (same shape).
public func mul(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.count == b.count, "mul: \(a.shape) × \(b.shape)")
    let y = Tensor(shape: a.shape, zeroed: false)
    let pa = a.pointer, pb = b.pointer, py = y.pointer
    parallelFor(a.count, grain: 1 << 15) { r in kk_mul(pa + r.lowerBound, pb + r.lowerBound, py + r.lowerBound, r.count) }
    return y
}

/// a · s
public func scale(_ a: Tensor, _ s: Float, inPlace: Bool = false) -> Tensor {
    let y = inPlace ? a : Tensor(shape: a.shape, zeroed: false)
    let pa = a.pointer, py = y.pointer
    parallelFor(a.count, grain: 1 << 15) { r in kk_scale(pa + r.lowerBound, s, py + r.lowerBound, r.count) }
    return y
}

/// y += a·x (same shape), in y's storage.
public func axpy(_ a: Float, _ x: Tensor, _ y: Tensor) {
    precondition(x.count == y.count, "axpy: \(x.shape) into \(y.shape)")
    let px = x.pointer, py = y.pointer
    parallelFor(x.count, grain: 1 << 15) { r in kk_axpy(a, px + r.lowerBound, py + r.lowerBound, r.count) }
}

/// x[b, c, …] += v[b, c] for an NC… tensor (a ResNet's time embedding added per channel).
public func addPerChannel(_ x: Tensor, _ v: Tensor) {
    let b = x.shape[0], c = x.shape[1]
    precondition(v.count == b * c, "addPerChannel: \(v.shape) for \(x.shape)")
    let inner = x.count / (b * c)
    let px = x.pointer, pv = v.pointer
    parallelFor(b * c, grain: 4) { r in
        for i in r {
            let add = pv[i]
            let row = px + i * inner
            for j in 0..<inner { row[j] += add }
        }
    }
}

/// `x` rounded to the nearest bfloat16 values (ties to even, as torch's `.bfloat16()`), as float32.
public func roundedToBFloat16(_ x: Tensor) -> Tensor {
    let y = Tensor(shape: x.shape, zeroed: false)
    let px = x.pointer, py = y.pointer
    parallelFor(x.count, grain: 1 << 16) { r in kk_round_bf16(px + r.lowerBound, py + r.lowerBound, r.count) }
    return y
}
