/// `torch.nn.Linear`: y = x·Wᵀ + b, weight [out, in].
public final class Linear: @unchecked Sendable {
    public let weight: Weight
    public let bias: Tensor?
    public let backend: ComputeBackend
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public init(weight: Weight, bias: Tensor?, backend: ComputeBackend = Backends.float32) {
        self.weight = weight
        self.bias = bias
        self.backend = backend
    }

    /// Loads `<scope>.weight` [out, in] and, if `bias`, `<scope>.bias` [out].
    public convenience init(_ w: WeightScope, in inFeatures: Int, out outFeatures: Int, bias: Bool,
                            backend: ComputeBackend = Backends.float32) throws {
        let weight = try w.weight("weight", shape: [outFeatures, inFeatures])
        let b = bias ? try w.tensor("bias", shape: [outFeatures]) : nil
        self.init(weight: weight, bias: b, backend: backend)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        backend.linear(x, weight: weight, bias: bias)
    }

    /// `self(x) + residual`, the add fused into the product where the backend can.
    public func callAsFunction(_ x: Tensor, residual: Tensor?) -> Tensor {
        guard let residual else { return backend.linear(x, weight: weight, bias: bias) }
        return backend.linear(x, weight: weight, bias: bias, residual: residual)
    }
}
