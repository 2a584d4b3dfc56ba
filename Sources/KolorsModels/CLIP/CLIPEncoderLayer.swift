import KolorsEngine

/// Mirrors transformers' `CLIPEncoderLayer`: pre-LN self-attention (q/k/v/out with biases,
/// scale 1/√head_dim, no mask) and MLP (fc1 → activation → fc2), each with a residual.
public final class CLIPEncoderLayer: @unchecked Sendable {
    let layerNorm1: LayerNorm
    let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear
    let layerNorm2: LayerNorm
    let fc1: Linear, fc2: Linear
    let heads: Int
    let headDim: Int
    let activation: CLIPActivation
    let backend: ComputeBackend

    public init(_ w: WeightScope, config c: CLIPVisionConfig, backend: ComputeBackend) throws {
        let d = c.hiddenSize
        layerNorm1 = try LayerNorm(w.scope("layer_norm1"), dim: d, eps: c.layerNormEps)
        let attn = w.scope("self_attn")
        qProj = try Linear(attn.scope("q_proj"), in: d, out: d, bias: true, backend: backend)
        kProj = try Linear(attn.scope("k_proj"), in: d, out: d, bias: true, backend: backend)
        vProj = try Linear(attn.scope("v_proj"), in: d, out: d, bias: true, backend: backend)
        outProj = try Linear(attn.scope("out_proj"), in: d, out: d, bias: true, backend: backend)
        layerNorm2 = try LayerNorm(w.scope("layer_norm2"), dim: d, eps: c.layerNormEps)
        fc1 = try Linear(w.scope("mlp.fc1"), in: d, out: c.intermediateSize, bias: true, backend: backend)
        fc2 = try Linear(w.scope("mlp.fc2"), in: c.intermediateSize, out: d, bias: true, backend: backend)
        heads = c.numAttentionHeads
        headDim = c.headDim
        activation = CLIPActivation(c.hiddenAct) ?? .quickGelu
        self.backend = backend
    }

    /// x [B, L, hidden]; updates and returns x.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = layerNorm1(x)
        let attn = backend.attention(q: qProj(h), k: kProj(h), v: vProj(h), heads: heads, kvHeads: heads,
                                     scale: 1 / Float(headDim).squareRoot(), mask: nil)
        addInPlace(x, outProj(attn))
        addInPlace(x, fc2(activation(fc1(layerNorm2(x)))))
        return x
    }
}
