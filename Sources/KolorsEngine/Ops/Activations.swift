import CKolorsKernels

/// Applies a C kernel `(in, out, n)` element-wise across worker threads.
@inline(__always)
func mapElementwise(_ x: Tensor, inPlace: Bool,
                    _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
    let y = inPlace ? x : Tensor(shape: x.shape, zeroed: false)
    let src = x.pointer, dst = y.pointer
    parallelFor(x.count, grain: 1 << 14) { r in
        kernel(src + r.lowerBound, dst + r.lowerBound, r.count)
    }
    return y
}

/// x · sigmoid(x)
public func silu(_ x: Tensor, inPlace: Bool = false) -> Tensor {
    mapElementwise(x, inPlace: inPlace) { kk_silu($0, $1, $2) }
}

/// Exact GELU, 0.5·x·(1 + erf(x/√2)) (PyTorch's default `gelu`).
public func geluErf(_ x: Tensor, inPlace: Bool = false) -> Tensor {
    mapElementwise(x, inPlace: inPlace) { kk_gelu_erf($0, $1, $2) }
}

/// GELU with the tanh approximation (`gelu(approximate="tanh")`).
public func geluTanh(_ x: Tensor, inPlace: Bool = false) -> Tensor {
    mapElementwise(x, inPlace: inPlace) { kk_gelu_tanh($0, $1, $2) }
}

/// CLIP's quick GELU, x · sigmoid(1.702·x).
public func quickGelu(_ x: Tensor, inPlace: Bool = false) -> Tensor {
    mapElementwise(x, inPlace: inPlace) { kk_quick_gelu($0, $1, $2) }
}

/// exp(x)
public func exp(_ x: Tensor) -> Tensor {
    mapElementwise(x, inPlace: false) { kk_exp($0, $1, $2) }
}

/// Applies a gated kernel `(in, out, rows, inner)` to rows of width 2·inner, giving width inner.
func gated(_ x: Tensor, _ name: String, _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int) -> Void) -> Tensor {
    let width = x.shape[x.rank - 1]
    precondition(width % 2 == 0, "\(name): odd last dimension \(width)")
    let inner = width / 2, rows = x.count / width
    var shape = x.shape
    shape[shape.count - 1] = inner
    let y = Tensor(shape: shape, zeroed: false)
    let src = x.pointer, dst = y.pointer
    parallelFor(rows, grain: 8) { r in
        kernel(src + r.lowerBound * width, dst + r.lowerBound * inner, r.count, inner)
    }
    return y
}

/// GEGLU as diffusers computes it: the last dimension (2·n) splits into value (first half) and
/// gate (second half); output = value · gelu(gate), exact erf GELU.
public func geglu(_ x: Tensor) -> Tensor {
    OpProfiler.shared.measure("geglu") { gated(x, "geglu") { kk_geglu($0, $1, $2, $3) } }
}

/// SwiGLU as ChatGLM computes it: silu(first half) · second half of the last dimension.
public func swiglu(_ x: Tensor) -> Tensor {
    gated(x, "swiglu") { kk_swiglu($0, $1, $2, $3) }
}

/// Softmax over the last dimension.
public func softmax(_ x: Tensor, inPlace: Bool = false) -> Tensor {
    let y = inPlace ? x : x.copy()
    let cols = x.shape[x.rank - 1], rows = x.count / max(cols, 1)
    let p = y.pointer
    parallelFor(rows, grain: 16) { r in
        kk_softmax_rows(p + r.lowerBound * cols, r.count, cols, cols)
    }
    return y
}
