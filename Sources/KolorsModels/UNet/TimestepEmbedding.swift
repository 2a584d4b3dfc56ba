import KolorsEngine

/// Mirrors diffusers `TimestepEmbedding`: linear_1 → SiLU → linear_2.
public final class TimestepEmbedding: @unchecked Sendable {
    let linear1: Linear
    let linear2: Linear

    public init(_ w: WeightScope, inChannels: Int, timeEmbedDim: Int, backend: ComputeBackend) throws {
        linear1 = try Linear(w.scope("linear_1"), in: inChannels, out: timeEmbedDim, bias: true, backend: backend)
        linear2 = try Linear(w.scope("linear_2"), in: timeEmbedDim, out: timeEmbedDim, bias: true, backend: backend)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        linear2(silu(linear1(x), inPlace: true))
    }
}
