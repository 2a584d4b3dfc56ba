import Foundation
import KolorsEngine

// The double-precision numpy arithmetic of diffusers' `set_timesteps`, and the float32
// element-wise updates of its `step` functions. Each helper names the numpy or diffusers
// function it reproduces; the rounding steps are kept in the same order.

/// `np.linspace(start, stop, num)`: i·step + start, with the last element exactly `stop`.
func numpyLinspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
    guard num > 1 else { return num == 1 ? [start] : [] }
    let step = (stop - start) / Double(num - 1)
    var values = (0..<num).map { Double($0) * step + start }
    values[num - 1] = stop
    return values
}

/// `np.arange(start, stop, step)` for a float step: ⌈(stop − start)/step⌉ values
/// start + i·δ with δ = (start + step) − start. Its length can exceed the intended count by
/// one (diffusers' "trailing" spacing then yields N + 1 timesteps, the last −1).
func numpyArange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
    let length = Int(((stop - start) / step).rounded(.up))
    guard length > 1 else { return length == 1 ? [start] : [] }
    let delta = (start + step) - start
    return [start, start + step] + (2..<length).map { start + Double($0) * delta }
}

/// numpy's `round` (half to even).
func roundHalfEven(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

/// `x` rounded to the nearest float32 (numpy's `dtype=np.float32`).
func roundedToFloat32(_ x: Double) -> Double {
    let f: Float = Float(x)
    return Double(f)
}

/// `np.interp(x, arange(table.count), table)`: linear interpolation, clamped at both ends.
func interpolate(_ table: [Float], at x: Double) -> Double {
    if x <= 0 { return Double(table[0]) }
    let last = table.count - 1
    if x >= Double(last) { return Double(table[last]) }
    let j = Int(x.rounded(.down))
    if Double(j) == x { return Double(table[j]) }
    let slope = Double(table[j + 1]) - Double(table[j])
    return slope * (x - Double(j)) + Double(table[j])
}

/// diffusers' `_convert_to_karras`: ρ = 7 spacing from `sigmaMax` down to `sigmaMin` (double).
func karrasSigmas(min sigmaMin: Double, max sigmaMax: Double, count: Int) -> [Double] {
    let rho = 7.0
    let minInvRho = pow(sigmaMin, 1 / rho), maxInvRho = pow(sigmaMax, 1 / rho)
    return numpyLinspace(0, 1, count).map { pow(maxInvRho + $0 * (minInvRho - maxInvRho), rho) }
}

/// diffusers' `_sigma_to_t`: the fractional training timestep of σ, interpolating log σ
/// between the two bracketing table entries (weight clipped to [0, 1]). As in numpy, the
/// bracket difference is a float32 subtraction.
func sigmaToTimestep(_ sigma: Double, logSigmas: [Float]) -> Double {
    let logSigma = Foundation.log(max(sigma, 1e-10))
    // numpy takes the last index with log σ_i ≤ log σ (0 if none); the table ascends, so
    // that is one before the partition point.
    var atOrBelow = 0, above = logSigmas.count
    while atOrBelow < above {
        let mid = (atOrBelow + above) / 2
        if Double(logSigmas[mid]) <= logSigma { atOrBelow = mid + 1 } else { above = mid }
    }
    let low = min(max(atOrBelow - 1, 0), logSigmas.count - 2)
    let lowLog = logSigmas[low], highLog = logSigmas[low + 1]
    let w = min(max((Double(lowLog) - logSigma) / Double(lowLog - highLog), 0), 1)
    return (1 - w) * Double(low) + w * Double(low + 1)
}

/// Rejects step counts diffusers cannot schedule.
func validateStepCount(_ steps: Int, trainSteps: Int, in scheduler: String) throws {
    guard steps >= 1, steps <= trainSteps else {
        throw SchedulerError("\(scheduler): the number of inference steps must be between 1 and \(trainSteps) (num_train_timesteps), got \(steps)")
    }
}

/// The VP coefficients of a σ (diffusers' `_sigma_to_alpha_sigma_t`): α = 1/√(σ²+1), s = σ·α.
func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
    let alpha = 1 / (sigma * sigma + 1).squareRoot()
    return (alpha, sigma * alpha)
}

/// λ = log α − log s (+∞ at σ = 0).
func lambda(_ sigma: Float) -> Float {
    let (alpha, s) = alphaSigma(sigma)
    return Foundation.log(alpha) - Foundation.log(s)
}

// MARK: element-wise float32 updates

/// A new tensor f(a[i]).
func elementwise(_ a: Tensor, _ f: (Float) -> Float) -> Tensor {
    let y = Tensor(shape: a.shape, zeroed: false)
    let pa = a.pointer, py = y.pointer
    for i in 0..<a.count { py[i] = f(pa[i]) }
    return y
}

/// A new tensor f(a[i], b[i]) (same element count).
func elementwise(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    precondition(a.count == b.count, "scheduler: \(a.shape) vs \(b.shape)")
    let y = Tensor(shape: a.shape, zeroed: false)
    let pa = a.pointer, pb = b.pointer, py = y.pointer
    for i in 0..<a.count { py[i] = f(pa[i], pb[i]) }
    return y
}

/// A new tensor f(a[i], b[i], c[i]) (same element count).
func elementwise(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
    precondition(a.count == b.count && a.count == c.count, "scheduler: \(a.shape) vs \(b.shape) vs \(c.shape)")
    let y = Tensor(shape: a.shape, zeroed: false)
    let pa = a.pointer, pb = b.pointer, pc = c.pointer, py = y.pointer
    for i in 0..<a.count { py[i] = f(pa[i], pb[i], pc[i]) }
    return y
}

/// Σ_k w_k·t_k, summed in order (torch's `einsum("k,bkc...->bc...")` over K solver terms).
func weightedSum(_ weights: [Float], _ tensors: [Tensor]) -> Tensor {
    var sum = elementwise(tensors[0]) { weights[0] * $0 }
    for k in 1..<tensors.count {
        let w = weights[k]
        sum = elementwise(sum, tensors[k]) { $0 + w * $1 }
    }
    return sum
}
