import KolorsEngine

/// Mirrors diffusers `IPAdapterPlusImageProjection` (IP-Adapter-Plus' Perceiver "Resampler"):
/// learned latent queries read CLIP's penultimate hidden states through `depth` blocks, then
/// proj_out and norm_out. Hyper-parameters come from the weights as diffusers derives them
/// (heads = to_q rows / 64; depth = number of `layers.i`).
public final class IPAdapterPlusImageProjection: @unchecked Sendable {
    public let embedDims: Int
    public let hiddenDims: Int
    public let outputDims: Int
    public let numQueries: Int
    public let heads: Int
    let latents: Tensor
    let projIn: Linear
    let layers: [IPAdapterPlusImageProjectionBlock]
    let projOut: Linear
    let normOut: LayerNorm

    /// diffusers' fixed `dim_head`.
    public static let headDim = 64

    /// `w` is in diffusers names (`latents`, `proj_in`, `layers.i.…`, `proj_out`, `norm_out`).
    public init(_ w: WeightScope, embedDims: Int, hiddenDims: Int, outputDims: Int, numQueries: Int, heads: Int,
                depth: Int, ffInner: Int, backend: ComputeBackend) throws {
        self.embedDims = embedDims
        self.hiddenDims = hiddenDims
        self.outputDims = outputDims
        self.numQueries = numQueries
        self.heads = heads
        latents = try w.tensor("latents", shape: [1, numQueries, hiddenDims])
        projIn = try Linear(w.scope("proj_in"), in: embedDims, out: hiddenDims, bias: true, backend: backend)
        layers = try (0..<depth).map {
            try IPAdapterPlusImageProjectionBlock(w.scope("layers.\($0)"), dim: hiddenDims, heads: heads,
                                                  headDim: Self.headDim, ffInner: ffInner, backend: backend)
        }
        projOut = try Linear(w.scope("proj_out"), in: hiddenDims, out: outputDims, bias: true, backend: backend)
        normOut = try LayerNorm(w.scope("norm_out"), dim: outputDims, eps: 1e-5)
    }

    /// Image features [B, L, embed_dims] (CLIP hidden_states[-2]) → image tokens [B, queries, output_dims].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == embedDims, "resampler wants [B, L, \(embedDims)], got \(x.shape)")
        let b = x.shape[0]
        var l = concat(Array(repeating: latents, count: b), dim: 0)
        let h = projIn(x)
        for layer in layers { l = layer(h, latents: l) }
        return normOut(projOut(l))
    }
}
