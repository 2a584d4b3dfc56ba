import KolorsEngine

/// Mirrors ChatGLM's `GLMBlock`: RMSNorm → multi-query self-attention with partial interleaved
/// RoPE → residual → RMSNorm → SwiGLU MLP → residual.
public final class GLMBlock: @unchecked Sendable {
    let inputLayernorm: RMSNorm
    let queryKeyValue: Linear
    let dense: Linear
    let postAttentionLayernorm: RMSNorm
    let denseHTo4h: Linear
    let dense4hToH: Linear
    let heads: Int
    let kvHeads: Int
    let headDim: Int
    let backend: ComputeBackend

    /// The loader's policy stores the weights (mapped, used once per run, int8 for the names
    /// `int8Names` gives).
    init(_ w: WeightScope, config c: ChatGLMConfig, backend: ComputeBackend) throws {
        heads = c.numAttentionHeads
        kvHeads = c.kvHeads
        headDim = c.kvChannels
        self.backend = backend
        let projection = heads * headDim
        let qkvWidth = projection + 2 * kvHeads * headDim
        inputLayernorm = try RMSNorm(w.scope("input_layernorm"), dim: c.hiddenSize, eps: c.layernormEpsilon)
        queryKeyValue = try Linear(w.scope("self_attention.query_key_value"), in: c.hiddenSize, out: qkvWidth,
                                   bias: c.addBiasLinear || c.addQkvBias, backend: backend)
        dense = try Linear(w.scope("self_attention.dense"), in: projection, out: c.hiddenSize, bias: c.addBiasLinear, backend: backend)
        postAttentionLayernorm = try RMSNorm(w.scope("post_attention_layernorm"), dim: c.hiddenSize, eps: c.layernormEpsilon)
        denseHTo4h = try Linear(w.scope("mlp.dense_h_to_4h"), in: c.hiddenSize, out: 2 * c.ffnHiddenSize,
                                bias: c.addBiasLinear, backend: backend)
        dense4hToH = try Linear(w.scope("mlp.dense_4h_to_h"), in: c.ffnHiddenSize, out: c.hiddenSize,
                                bias: c.addBiasLinear, backend: backend)
    }

    /// ChatGLM3's quantize(8) covers these four matrices of every layer.
    static func isQuantized(_ name: String) -> Bool {
        ["self_attention.query_key_value.weight", "self_attention.dense.weight", "mlp.dense_h_to_4h.weight",
         "mlp.dense_4h_to_h.weight"].contains { name.hasPrefix("encoder.layers.") && name.hasSuffix($0) }
    }

    /// The matrices int8 quantization covers, with their full names.
    func quantizedLinears(prefix: String) -> [(String, Linear)] {
        [(prefix + "self_attention.query_key_value.weight", queryKeyValue), (prefix + "self_attention.dense.weight", dense),
         (prefix + "mlp.dense_h_to_4h.weight", denseHTo4h), (prefix + "mlp.dense_4h_to_h.weight", dense4hToH)]
    }

    /// Drops this layer's mapped weights from the process once it has run.
    func releasePages() {
        for l in [queryKeyValue, dense, denseHTo4h, dense4hToH] { l.weight.releasePages() }
    }

    /// x [B, S, hidden]; rotary tables [B·S, rotaryDim/2]; mask [B, S, S] additive (or shared causal).
    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, mask: AttentionMask) -> Tensor {
        let qd = heads * headDim, kd = kvHeads * headDim
        let qkv = queryKeyValue(inputLayernorm(x))
        let q = sliceLastDim(qkv, 0..<qd)
        let k = sliceLastDim(qkv, qd..<(qd + kd))
        let v = sliceLastDim(qkv, (qd + kd)..<(qd + 2 * kd))
        applyRotaryInterleaved(q, heads: heads, cos: cos, sin: sin)
        applyRotaryInterleaved(k, heads: kvHeads, cos: cos, sin: sin)
        let context = backend.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads,
                                        scale: 1 / Float(headDim).squareRoot(), mask: mask)
        let h1 = dense(context, residual: x)
        return dense4hToH(swiglu(denseHTo4h(postAttentionLayernorm(h1))), residual: h1)
    }
}
