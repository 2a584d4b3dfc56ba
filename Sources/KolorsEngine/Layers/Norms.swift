/// `torch.nn.GroupNorm` (affine), optionally fused with the SiLU that usually follows it.
public struct GroupNorm: Sendable {
    public let groups: Int
    public let eps: Float
    public let weight: Tensor
    public let bias: Tensor

    public init(groups: Int, weight: Tensor, bias: Tensor, eps: Float) {
        self.groups = groups
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }

    public init(_ w: WeightScope, groups: Int, channels: Int, eps: Float) throws {
        // A group count that does not divide the channels would leave part of the output
        // unwritten (uninitialised memory); configs are checked earlier, this is the backstop.
        guard groups >= 1, channels % groups == 0 else {
            throw CheckpointError("\(w.prefix.dropLast()): \(channels) channels do not split into \(groups) norm groups")
        }
        self.init(groups: groups, weight: try w.tensor("weight", shape: [channels]),
                  bias: try w.tensor("bias", shape: [channels]), eps: eps)
    }

    public func callAsFunction(_ x: Tensor, silu: Bool = false) -> Tensor {
        groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu)
    }
}

/// `torch.nn.LayerNorm` over the last dimension (affine).
public struct LayerNorm: Sendable {
    public let eps: Float
    public let weight: Tensor?
    public let bias: Tensor?

    public init(weight: Tensor?, bias: Tensor?, eps: Float) {
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }

    public init(_ w: WeightScope, dim: Int, eps: Float, affine: Bool = true, bias: Bool = true) throws {
        self.init(weight: affine ? try w.tensor("weight", shape: [dim]) : nil,
                  bias: affine && bias ? try w.tensor("bias", shape: [dim]) : nil, eps: eps)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
}

/// RMSNorm (ChatGLM's `RMSNorm`): x · rsqrt(mean(x²) + eps) · weight.
public struct RMSNorm: Sendable {
    public let eps: Float
    public let weight: Tensor

    public init(weight: Tensor, eps: Float) {
        self.weight = weight
        self.eps = eps
    }

    public init(_ w: WeightScope, dim: Int, eps: Float) throws {
        self.init(weight: try w.tensor("weight", shape: [dim]), eps: eps)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        rmsNorm(x, weight: weight, eps: eps)
    }
}
