import Foundation
import KolorsEngine

/// Mirrors diffusers' `UniPCMultistepScheduler` (UniP predictor + UniC corrector, no `solver_p`).
public final class UniPCMultistepScheduler: Scheduler {
    enum SolverType: String, CaseIterable { case bh1, bh2 }

    public let name = "unipc"
    public let order = 1
    public private(set) var timesteps: [Float] = []
    /// σ of each timestep, then the σ after the last step (0, or σ_min).
    public private(set) var sigmas: [Float] = []
    /// Latents stay in VP space: no input scaling and unit initial noise.
    public let initNoiseSigma: Float = 1

    let schedule: NoiseSchedule
    let spacing: TimestepSpacing
    let stepsOffset: Int
    let prediction: PredictionType
    let solverOrder: Int
    let solverType: SolverType
    let predictX0: Bool
    let lowerOrderFinal: Bool
    let disableCorrector: Set<Int>
    let useKarrasSigmas: Bool
    let sigmaMin: Double?
    let sigmaMax: Double?
    let finalSigmas: FinalSigmas

    /// The converted model outputs (x0, or ε without `predict_x0`) of the last `solverOrder`
    /// steps, oldest first.
    private var modelOutputs: [Tensor] = []
    private var lowerOrderNums = 0
    /// The predictor's input and order of the previous step, which the corrector refines.
    private var lastSample: Tensor?
    private var lastOrder = 0
    private var nextStepIndex = 0

    public init(config: SchedulerConfig) throws {
        let me = "UniPCMultistepScheduler"
        try config.rejectUnsupported(["thresholding": config.thresholding,
                                      "use_exponential_sigmas": config.useExponentialSigmas,
                                      "use_beta_sigmas": config.useBetaSigmas, "use_flow_sigmas": config.useFlowSigmas,
                                      "use_dynamic_shifting": config.useDynamicShifting], in: me)
        schedule = try NoiseSchedule(config: config, scheduler: me)
        spacing = try config.option(config.timestepSpacing, key: "timestep_spacing", default: .linspace, in: me)
        stepsOffset = config.stepsOffset ?? 0
        prediction = try config.option(config.predictionType, key: "prediction_type", default: .epsilon, in: me)
        solverOrder = config.solverOrder ?? 2
        guard (1...3).contains(solverOrder) else { throw SchedulerError("\(me): solver_order must be 1, 2 or 3, got \(solverOrder)") }
        // A DPM-Solver config's solver types fall back to bh2, as in diffusers.
        let solver = ["midpoint", "heun", "logrho"].contains(config.solverType ?? "") ? "bh2" : config.solverType
        solverType = try config.option(solver, key: "solver_type", default: .bh2, in: me)
        predictX0 = config.predictX0 ?? true
        lowerOrderFinal = config.lowerOrderFinal ?? true
        disableCorrector = Set(config.disableCorrector ?? [])
        useKarrasSigmas = config.useKarrasSigmas ?? false
        sigmaMin = config.sigmaMin
        sigmaMax = config.sigmaMax
        finalSigmas = try config.option(config.finalSigmasType, key: "final_sigmas_type", default: .zero, in: me)
    }

    public func setTimesteps(_ steps: Int) throws {
        try validateStepCount(steps, trainSteps: schedule.count, in: name)
        let t = schedule.count
        var points: [Double]
        points = spacing.timesteps(steps: steps, trainSteps: t, offset: stepsOffset, rounding: .halfEven, multistep: true)
        let sigmaValues: [Double]
        let last: Float
        if useKarrasSigmas {
            // As DPM-Solver, except that σ_min here is the last Karras σ.
            sigmaValues = karrasSigmas(min: sigmaMin ?? Double(schedule.sigmas[0]),
                                       max: sigmaMax ?? Double(schedule.sigmas[t - 1]), count: steps)
            let logSigmas = schedule.logSigmas
            points = sigmaValues.map { roundHalfEven(sigmaToTimestep($0, logSigmas: logSigmas)) }
            last = finalSigmas == .zero ? 0 : Float(sigmaValues.last!)
        } else {
            sigmaValues = points.map { interpolate(schedule.sigmas, at: $0) }
            last = finalSigmas == .zero ? 0 : schedule.sigmas[0]
        }
        sigmas = sigmaValues.map { Float($0) } + [last]
        timesteps = points.map { Float($0) }
        modelOutputs = []
        lowerOrderNums = 0
        lastSample = nil
        nextStepIndex = 0
    }

    /// img2img: the first step taken will be `index`.
    public func setBeginIndex(_ index: Int) { nextStepIndex = index }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    /// Corrects the current sample with this step's model output (UniC, except on the first
    /// step and where disabled), then predicts the next one (UniP). The order ramps up from 1
    /// and, with `lower_order_final`, drops back so the last step is first order.
    public func step(modelOutput: Tensor, stepIndex i: Int, sample: Tensor, generator: inout TorchGenerator) -> SchedulerStepOutput {
        precondition(i == nextStepIndex, "\(name): steps must be taken in order (expected step \(nextStepIndex), got \(i))")
        nextStepIndex += 1
        let converted = convertModelOutput(modelOutput, sample: sample, sigma: sigmas[i])
        var corrected = sample
        if i > 0, !disableCorrector.contains(i - 1), let last = lastSample {
            corrected = correct(modelOutput: converted, lastSample: last, order: lastOrder, i: i)
        }
        modelOutputs.append(converted)
        if modelOutputs.count > solverOrder { modelOutputs.removeFirst() }
        let order = min(lowerOrderFinal ? min(solverOrder, timesteps.count - i) : solverOrder, lowerOrderNums + 1)
        lastOrder = order
        lastSample = corrected
        lowerOrderNums = min(lowerOrderNums + 1, solverOrder)
        let x0 = predictX0 ? converted : x0(fromEpsilon: converted, sample: sample, i: i)
        // To σ = 0 the prediction is x0. diffusers' formulas reduce to exactly that with the
        // defaults (bh2, predict_x0, lower_order_final) but give NaN (∞·0) otherwise.
        let previous = sigmas[i + 1] == 0 ? x0.copy() : predict(sample: corrected, order: order, i: i)
        return SchedulerStepOutput(previousSample: previous, predictedOriginal: x0)
    }

    /// The x0 preview when the solver works on ε (`predict_x0 = false`).
    private func x0(fromEpsilon epsilon: Tensor, sample: Tensor, i: Int) -> Tensor {
        let (alpha, s) = alphaSigma(sigmas[i])
        return elementwise(sample, epsilon) { x, e in (x - s * e) / alpha }
    }

    /// α·x0 + s·n at the step's σ.
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let (alpha, s) = alphaSigma(sigmas[stepIndex])
        return elementwise(original, noise) { x, n in alpha * x + s * n }
    }

    /// diffusers' `convert_model_output`: x0 with `predict_x0`, otherwise ε.
    private func convertModelOutput(_ output: Tensor, sample: Tensor, sigma: Float) -> Tensor {
        let (alpha, s) = alphaSigma(sigma)
        switch (predictX0, prediction) {
        case (true, .epsilon): return elementwise(sample, output) { x, e in (x - s * e) / alpha }
        case (true, .vPrediction): return elementwise(sample, output) { x, v in alpha * x - s * v }
        case (false, .sample): return elementwise(sample, output) { x, x0 in (x - alpha * x0) / s }
        case (false, .vPrediction): return elementwise(output, sample) { v, x in alpha * v + s * x }
        case (true, .sample), (false, .epsilon): return output
        }
    }

    /// The coefficients shared by UniP and UniC from σ_s0 (the step's start) to σ_t (its end)
    /// and the earlier σ of the history: the ratios r_k, h·φ₁, B(h) and the vector b.
    private struct Coefficients {
        var rks: [Float] = []
        var hPhi1: Float = 0
        var bH: Float = 0
        var b: [Float] = []
        /// R (rows r^0, r^1, …) restricted to the first `n` rows and columns.
        func r(_ n: Int) -> [[Float]] { (0..<n).map { row in rks.prefix(n).map { power($0, row) } } }
    }

    private func coefficients(sigmaT: Float, sigmaS0: Float, history: [Float], order: Int) -> Coefficients {
        let lambdaS0 = lambda(sigmaS0)
        let h = lambda(sigmaT) - lambdaS0
        var c = Coefficients()
        c.rks = history.map { (lambda($0) - lambdaS0) / h } + [1]
        let hh = predictX0 ? -h : h
        c.hPhi1 = Foundation.expm1(hh)
        c.bH = solverType == .bh1 ? hh : Foundation.expm1(hh)
        var hPhiK = c.hPhi1 / hh - 1
        var factorial = 1
        for k in 1...order {
            c.b.append(hPhiK * Float(factorial) / c.bH)
            factorial *= k + 1
            hPhiK = hPhiK / hh - Float(1 / Double(factorial))
        }
        return c
    }

    /// x_t before the higher-order terms: (s_t/s_s0)·x − α_t·hφ₁·m0 (or the ε form), and
    /// the factor of the correction sum.
    private func baseTerms(sigmaT: Float, sigmaS0: Float, c: Coefficients) -> (a: Float, b: Float, correction: Float) {
        let (alphaT, sT) = alphaSigma(sigmaT)
        let (alphaS0, sS0) = alphaSigma(sigmaS0)
        return predictX0 ? (sT / sS0, alphaT * c.hPhi1, alphaT * c.bH)
                         : (alphaT / alphaS0, sT * c.hPhi1, sT * c.bH)
    }

    /// UniP (diffusers' `multistep_uni_p_bh_update`) from step i to i + 1.
    private func predict(sample: Tensor, order: Int, i: Int) -> Tensor {
        let m0 = modelOutputs[modelOutputs.count - 1]
        let history = (1..<order).map { sigmas[i - $0] }
        let c = coefficients(sigmaT: sigmas[i + 1], sigmaS0: sigmas[i], history: history, order: order)
        let (a, b, correction) = baseTerms(sigmaT: sigmas[i + 1], sigmaS0: sigmas[i], c: c)
        let base = elementwise(sample, m0) { x, m in a * x - b * m }
        guard order > 1 else { return base }
        let rhos: [Float] = order == 2 ? [0.5] : solveLinearSystem(c.r(order - 1), Array(c.b.prefix(order - 1)))
        let result = weightedSum(rhos, differences(c.rks))
        return elementwise(base, result) { x, r in x - correction * r }
    }

    /// UniC (diffusers' `multistep_uni_c_bh_update`): refines the sample of step i using the
    /// model output there, from the previous step's input `lastSample`.
    private func correct(modelOutput: Tensor, lastSample: Tensor, order: Int, i: Int) -> Tensor {
        let m0 = modelOutputs[modelOutputs.count - 1]
        let history = (1..<order).map { sigmas[i - 1 - $0] }
        let c = coefficients(sigmaT: sigmas[i], sigmaS0: sigmas[i - 1], history: history, order: order)
        let (a, b, correction) = baseTerms(sigmaT: sigmas[i], sigmaS0: sigmas[i - 1], c: c)
        let base = elementwise(lastSample, m0) { x, m in a * x - b * m }
        let rhos: [Float] = order == 1 ? [0.5] : solveLinearSystem(c.r(order), c.b)
        let rhoLast = rhos[order - 1]
        let d1t = elementwise(modelOutput, m0) { mt, m in rhoLast * (mt - m) }
        let sum = order == 1 ? d1t : elementwise(weightedSum(Array(rhos.prefix(order - 1)), differences(c.rks)), d1t, +)
        return elementwise(base, sum) { x, r in x - correction * r }
    }

    /// D1_k = (m_k − m0)/r_k for the k-th older converted output m_k (k = 1 ..< order).
    private func differences(_ rks: [Float]) -> [Tensor] {
        let count = modelOutputs.count, m0 = modelOutputs[count - 1]
        return (1..<rks.count).map { k in
            let rk = rks[k - 1]
            return elementwise(modelOutputs[count - 1 - k], m0) { mi, m in (mi - m) / rk }
        }
    }
}

/// torch.pow(x, n) for the small integer exponents of R (repeated products, as torch's fast path).
private func power(_ x: Float, _ n: Int) -> Float {
    switch n {
    case 0: 1
    case 1: x
    case 2: x * x
    case 3: x * x * x
    default: Foundation.pow(x, Float(n))
    }
}

/// Solves A·x = b (small, float32) by Gaussian elimination with partial pivoting, as LAPACK's
/// `gesv` behind `torch.linalg.solve`.
func solveLinearSystem(_ a: [[Float]], _ b: [Float]) -> [Float] {
    var a = a, b = b
    let n = b.count
    for col in 0..<n {
        let pivot = (col..<n).max { abs(a[$0][col]) < abs(a[$1][col]) }!
        a.swapAt(col, pivot)
        b.swapAt(col, pivot)
        let inverse = 1 / a[col][col]
        for row in (col + 1)..<n {
            let factor = a[row][col] * inverse
            for k in col..<n { a[row][k] -= factor * a[col][k] }
            b[row] -= factor * b[col]
        }
    }
    // Back substitution column by column, as LAPACK's trsm.
    for col in stride(from: n - 1, through: 0, by: -1) {
        b[col] /= a[col][col]
        for row in 0..<col { b[row] -= b[col] * a[row][col] }
    }
    return b
}
