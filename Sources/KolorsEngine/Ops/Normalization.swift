import CKolorsKernels

/// GroupNorm over an NC… tensor: statistics per (batch, group) over the group's channels and
/// all spatial positions, then a per-channel affine; optionally fused with SiLU.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                      silu: Bool = false) -> Tensor {
    OpProfiler.shared.measure("group_norm") { groupNormImpl(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu) }
}

func groupNormImpl(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float, silu: Bool) -> Tensor {
    let b = x.shape[0], c = x.shape[1]
    precondition(c % groups == 0, "groupNorm: \(c) channels in \(groups) groups")
    let hw = x.count / (b * c)
    let cpg = c / groups
    let y = Tensor(shape: x.shape, zeroed: false)
    let px = x.pointer, py = y.pointer
    let pw = weight?.pointer, pb = bias?.pointer
    parallelFor(b * groups) { r in
        for i in r {
            let bi = i / groups, g = i % groups
            let base = (bi * c + g * cpg) * hw
            var mean = 0.0, variance = 0.0
            kk_mean_var(px + base, cpg * hw, &mean, &variance)
            let rstd = Float(1.0 / (variance + Double(eps)).squareRoot())
            kk_norm_apply_channels(px + base, py + base, cpg, hw, Float(mean), rstd,
                                   pw.map { $0 + g * cpg }, pb.map { $0 + g * cpg }, silu ? 1 : 0)
        }
    }
    return y
}

/// LayerNorm over the last dimension.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    OpProfiler.shared.measure("layer_norm") { layerNormImpl(x, weight: weight, bias: bias, eps: eps) }
}

func layerNormImpl(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    let cols = x.shape[x.rank - 1], rows = x.count / cols
    let y = Tensor(shape: x.shape, zeroed: false)
    let px = x.pointer, py = y.pointer
    let pw = weight?.pointer, pb = bias?.pointer
    parallelFor(rows, grain: 16) { r in
        kk_layernorm_rows(px + r.lowerBound * cols, py + r.lowerBound * cols, r.count, cols, pw, pb, eps)
    }
    return y
}

/// RMSNorm over the last dimension: x · rsqrt(mean(x²) + eps) · weight.
public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) -> Tensor {
    let cols = x.shape[x.rank - 1], rows = x.count / cols
    let y = Tensor(shape: x.shape, zeroed: false)
    let px = x.pointer, py = y.pointer
    let pw = weight?.pointer
    parallelFor(rows, grain: 16) { r in
        kk_rmsnorm_rows(px + r.lowerBound * cols, py + r.lowerBound * cols, r.count, cols, pw, eps)
    }
    return y
}
