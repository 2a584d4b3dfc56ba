import Foundation

/// Rows of an embedding table for the given ids: output [ids.count, dim]. The table may stay
/// memory-mapped in fp16/bf16; only the looked-up rows are converted.
public func embeddingLookup(_ table: Weight, ids: [Int]) -> Tensor {
    let dim = table.shape[1], vocab = table.shape[0]
    let y = Tensor(shape: [ids.count, dim], zeroed: false)
    for (i, id) in ids.enumerated() {
        precondition(id >= 0 && id < vocab, "token id \(id) outside the embedding table (\(vocab) rows)")
        table.convertRows(id..<(id + 1), into: y.pointer + i * dim)
    }
    return y
}

/// Sinusoidal timestep embedding exactly as diffusers' `get_timestep_embedding`:
/// frequencies exp(−ln(maxPeriod)·i/(half − shift)), [sin, cos] (or [cos, sin] when
/// `flipSinToCos`), computed in float32. Output [timesteps.count, dim].
public func timestepEmbedding(_ timesteps: [Float], dim: Int, flipSinToCos: Bool, downscaleFreqShift: Float,
                              scale: Float = 1, maxPeriod: Float = 10000) -> Tensor {
    let half = dim / 2
    var freqs = [Float](repeating: 0, count: half)
    let logPeriod = Float(-Foundation.log(Double(maxPeriod)))
    for i in 0..<half {
        // torch: (−ln(maxPeriod) · arange(half)) / (half − shift), all float32, then exp
        let exponent = (logPeriod * Float(i)) / (Float(half) - downscaleFreqShift)
        freqs[i] = Foundation.exp(exponent)
    }
    let y = Tensor(shape: [timesteps.count, dim], zeroed: true)
    for (n, t) in timesteps.enumerated() {
        let row = y.pointer + n * dim
        for i in 0..<half {
            let arg = scale * (t * freqs[i])
            let s = Foundation.sin(arg), c = Foundation.cos(arg)
            if flipSinToCos {
                row[i] = c
                row[half + i] = s
            } else {
                row[i] = s
                row[half + i] = c
            }
        }
    }
    return y
}

/// Rotary position tables (cos, sin) for ChatGLM's RoPE: for each position p and pair i of
/// the rotated dims, angle p·θᵢ with θᵢ = 1 / base^(2i/rotaryDim), in float32.
/// Returns [positions.count, rotaryDim/2] tables.
public func rotaryTables(positions: [Int], rotaryDim: Int, base: Float = 10000) -> (cos: Tensor, sin: Tensor) {
    let pairs = rotaryDim / 2
    var theta = [Float](repeating: 0, count: pairs)
    for i in 0..<pairs {
        // torch: 1.0 / (base ** (arange(0, n, 2, float32) / n))
        let e = Float(2 * i) / Float(rotaryDim)
        theta[i] = 1 / Foundation.pow(base, e)
    }
    let c = Tensor(shape: [positions.count, pairs], zeroed: false)
    let s = Tensor(shape: [positions.count, pairs], zeroed: false)
    for (n, p) in positions.enumerated() {
        for i in 0..<pairs {
            let a = Float(p) * theta[i]
            c.pointer[n * pairs + i] = Foundation.cos(a)
            s.pointer[n * pairs + i] = Foundation.sin(a)
        }
    }
    return (c, s)
}

/// Applies interleaved partial rotary embedding in place (GPT-J layout, as ChatGLM does):
/// x is [tokens, heads·headDim] and, for each head, pairs (x[2i], x[2i+1]) of the first
/// `2·pairs` dims rotate by the token's angle; the remaining dims pass through.
/// `cos`/`sin` are [tokens, pairs] (one row per token, from its position id).
public func applyRotaryInterleaved(_ x: Tensor, heads: Int, cos: Tensor, sin: Tensor) {
    let tokens = cos.shape[0], pairs = cos.shape[1]
    let width = x.shape[x.rank - 1]
    precondition(x.count == tokens * width, "rotary: \(x.shape) for \(tokens) tokens")
    let headDim = width / heads
    precondition(2 * pairs <= headDim, "rotary: \(2 * pairs) rotated dims exceed head dim \(headDim)")
    let px = x.pointer, pc = cos.pointer, ps = sin.pointer
    parallelFor(tokens, grain: 16) { r in
        for t in r {
            let cr = pc + t * pairs, sr = ps + t * pairs
            for h in 0..<heads {
                let v = px + t * width + h * headDim
                for i in 0..<pairs {
                    let x0 = v[2 * i], x1 = v[2 * i + 1]
                    v[2 * i] = x0 * cr[i] - x1 * sr[i]
                    v[2 * i + 1] = x1 * cr[i] + x0 * sr[i]
                }
            }
        }
    }
}
