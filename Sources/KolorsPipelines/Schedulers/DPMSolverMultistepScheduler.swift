import Foundation
import KolorsEngine

/// Mirrors diffusers' `DPMSolverMultistepScheduler` (dpmsolver++: DPM++ 2M, Karras with `use_karras_sigmas`).
public final class DPMSolverMultistepScheduler: Scheduler {
    enum SolverType: String, CaseIterable { case midpoint, heun }

    public let name: String
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
    let lowerOrderFinal: Bool
    let eulerAtFinal: Bool
    let useKarrasSigmas: Bool
    let sigmaMin: Double?
    let sigmaMax: Double?
    let finalSigmas: FinalSigmas
    let lambdaMinClipped: Double

    /// The x0 predictions of the last `solverOrder` steps, oldest first.
    private var modelOutputs: [Tensor] = []
    private var lowerOrderNums = 0
    private var nextStepIndex = 0

    public init(config: SchedulerConfig) throws {
        let me = "DPMSolverMultistepScheduler"
        try config.rejectUnsupported(["thresholding": config.thresholding,
                                      "use_exponential_sigmas": config.useExponentialSigmas,
                                      "use_beta_sigmas": config.useBetaSigmas, "use_lu_lambdas": config.useLuLambdas,
                                      "use_flow_sigmas": config.useFlowSigmas,
                                      "use_dynamic_shifting": config.useDynamicShifting], in: me)
        schedule = try NoiseSchedule(config: config, scheduler: me)
        // diffusers maps "deis" to dpmsolver++; the other algorithms are not ported.
        let algorithm = config.algorithmType ?? "dpmsolver++"
        guard algorithm == "dpmsolver++" || algorithm == "deis" else {
            throw SchedulerError("\(me): algorithm_type '\(algorithm)' is not supported (valid: dpmsolver++)")
        }
        if let variance = config.varianceType {
            throw SchedulerError("\(me): variance_type '\(variance)' is not supported")
        }
        spacing = try config.option(config.timestepSpacing, key: "timestep_spacing", default: .linspace, in: me)
        stepsOffset = config.stepsOffset ?? 0
        prediction = try config.option(config.predictionType, key: "prediction_type", default: .epsilon, in: me)
        solverOrder = config.solverOrder ?? 2
        guard (1...3).contains(solverOrder) else {
            throw SchedulerError("\(me): solver_order must be 1, 2 or 3, got \(solverOrder)")
        }
        // A UniPC config's solver types fall back to midpoint, as in diffusers.
        let solver = ["logrho", "bh1", "bh2"].contains(config.solverType ?? "") ? "midpoint" : config.solverType
        solverType = try config.option(solver, key: "solver_type", default: .midpoint, in: me)
        lowerOrderFinal = config.lowerOrderFinal ?? true
        eulerAtFinal = config.eulerAtFinal ?? false
        useKarrasSigmas = config.useKarrasSigmas ?? false
        sigmaMin = config.sigmaMin
        sigmaMax = config.sigmaMax
        finalSigmas = try config.option(config.finalSigmasType, key: "final_sigmas_type", default: .zero, in: me)
        lambdaMinClipped = config.lambdaMinClipped ?? -.infinity
        name = useKarrasSigmas ? "dpm++2m-karras" : "dpm++2m"
    }

    public func setTimesteps(_ steps: Int) throws {
        try validateStepCount(steps, trainSteps: schedule.count, in: name)
        let t = schedule.count
        // Training timesteps whose λ = log √ᾱ − log √(1−ᾱ) is below lambda_min_clipped are cut
        // from the top of the range (none with the default −∞).
        let clipped = schedule.alphasCumprod.filter { ac in
            Double(Foundation.log(ac.squareRoot()) - Foundation.log((1 - ac).squareRoot())) < lambdaMinClipped
        }.count
        let lastTimestep = t - clipped
        var points: [Double]
        points = spacing.timesteps(steps: steps, trainSteps: t, offset: stepsOffset, rounding: .halfEven, multistep: true,
                                   last: lastTimestep)
        var sigmaValues: [Double]
        if useKarrasSigmas {
            // The ramp spans the whole training table; the timesteps are the rounded training
            // times of the Karras σ, which the solver itself uses unrounded.
            sigmaValues = karrasSigmas(min: sigmaMin ?? Double(schedule.sigmas[0]),
                                       max: sigmaMax ?? Double(schedule.sigmas[t - 1]), count: steps)
            let logSigmas = schedule.logSigmas
            points = sigmaValues.map { roundHalfEven(sigmaToTimestep($0, logSigmas: logSigmas)) }
        } else {
            sigmaValues = points.map { interpolate(schedule.sigmas, at: $0) }
        }
        let last: Float = finalSigmas == .zero ? 0 : schedule.sigmas[0]
        sigmas = sigmaValues.map { Float($0) } + [last]
        timesteps = points.map { Float($0) }
        modelOutputs = []
        lowerOrderNums = 0
        nextStepIndex = 0
    }

    /// img2img: the first step taken will be `index`.
    public func setBeginIndex(_ index: Int) { nextStepIndex = index }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public func step(modelOutput: Tensor, stepIndex i: Int, sample: Tensor, generator: inout TorchGenerator) -> SchedulerStepOutput {
        precondition(i == nextStepIndex, "\(name): steps must be taken in order (expected step \(nextStepIndex), got \(i))")
        nextStepIndex += 1
        let n = timesteps.count
        let lowerOrderFinalStep = i == n - 1 && (eulerAtFinal || (lowerOrderFinal && n < 15) || finalSigmas == .zero)
        let lowerOrderSecondStep = i == n - 2 && lowerOrderFinal && n < 15

        let x0 = convertModelOutput(modelOutput, sample: sample, sigma: sigmas[i])
        modelOutputs.append(x0)
        if modelOutputs.count > solverOrder { modelOutputs.removeFirst() }

        let previous: Tensor
        if solverOrder == 1 || lowerOrderNums < 1 || lowerOrderFinalStep {
            previous = firstOrderUpdate(sample: sample, i: i)
        } else if solverOrder == 2 || lowerOrderNums < 2 || lowerOrderSecondStep {
            previous = secondOrderUpdate(sample: sample, i: i)
        } else {
            previous = thirdOrderUpdate(sample: sample, i: i)
        }
        lowerOrderNums = min(lowerOrderNums + 1, solverOrder)
        return SchedulerStepOutput(previousSample: previous, predictedOriginal: x0)
    }

    /// α·x0 + s·n at the step's σ.
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let (alpha, s) = alphaSigma(sigmas[stepIndex])
        return elementwise(original, noise) { x, n in alpha * x + s * n }
    }

    /// diffusers' `convert_model_output` for dpmsolver++: the x0 prediction.
    private func convertModelOutput(_ output: Tensor, sample: Tensor, sigma: Float) -> Tensor {
        let (alpha, s) = alphaSigma(sigma)
        switch prediction {
        case .epsilon: return elementwise(sample, output) { x, e in (x - s * e) / alpha }
        case .vPrediction: return elementwise(sample, output) { x, v in alpha * x - s * v }
        case .sample: return output
        }
    }

    /// DPM-Solver++ first order (DDIM-like). To σ = 0 it returns the x0 prediction exactly,
    /// which is also what diffusers' formula reduces to (λ = +∞, e^{−h} = 0).
    private func firstOrderUpdate(sample: Tensor, i: Int) -> Tensor {
        let m0 = modelOutputs[modelOutputs.count - 1]
        if sigmas[i + 1] == 0 { return m0.copy() }
        let (alphaT, sigmaT) = alphaSigma(sigmas[i + 1])
        let (_, sigmaS) = alphaSigma(sigmas[i])
        let h = lambda(sigmas[i + 1]) - lambda(sigmas[i])
        let a = sigmaT / sigmaS, b = alphaT * (Foundation.exp(-h) - 1)
        return elementwise(sample, m0) { x, m in a * x - b * m }
    }

    /// Multistep DPM-Solver++(2M).
    private func secondOrderUpdate(sample: Tensor, i: Int) -> Tensor {
        let m0 = modelOutputs[modelOutputs.count - 1], m1 = modelOutputs[modelOutputs.count - 2]
        let (alphaT, sigmaT) = alphaSigma(sigmas[i + 1])
        let (_, sigmaS0) = alphaSigma(sigmas[i])
        let lambdaT = lambda(sigmas[i + 1]), lambdaS0 = lambda(sigmas[i]), lambdaS1 = lambda(sigmas[i - 1])
        let h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1
        let r0 = h0 / h
        let inverseR0 = 1 / r0
        let d1 = elementwise(m0, m1) { a, b in inverseR0 * (a - b) }
        let a = sigmaT / sigmaS0, c0 = alphaT * (Foundation.exp(-h) - 1)
        // x_t = a·x − c0·D0 + c1·D1 with c1 = −½·c0 (midpoint) or α_t((e^{−h} − 1)/h + 1) (Heun).
        let c1: Float = switch solverType {
        case .midpoint: -(0.5 * c0)
        case .heun: alphaT * ((Foundation.exp(-h) - 1) / h + 1)
        }
        return elementwise(sample, m0, d1) { x, d0, d1 in a * x - c0 * d0 + c1 * d1 }
    }

    /// Multistep DPM-Solver++(3M).
    private func thirdOrderUpdate(sample: Tensor, i: Int) -> Tensor {
        let count = modelOutputs.count
        let m0 = modelOutputs[count - 1], m1 = modelOutputs[count - 2], m2 = modelOutputs[count - 3]
        let (alphaT, sigmaT) = alphaSigma(sigmas[i + 1])
        let (_, sigmaS0) = alphaSigma(sigmas[i])
        let lambdaT = lambda(sigmas[i + 1]), lambdaS0 = lambda(sigmas[i])
        let lambdaS1 = lambda(sigmas[i - 1]), lambdaS2 = lambda(sigmas[i - 2])
        let h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1, h1 = lambdaS1 - lambdaS2
        let r0 = h0 / h, r1 = h1 / h
        let inverseR0 = 1 / r0, inverseR1 = 1 / r1
        let d10 = elementwise(m0, m1) { a, b in inverseR0 * (a - b) }
        let d11 = elementwise(m1, m2) { a, b in inverseR1 * (a - b) }
        let w1 = r0 / (r0 + r1), w2 = 1 / (r0 + r1)
        let expm = Foundation.exp(-h) - 1
        let a = sigmaT / sigmaS0, c0 = alphaT * expm
        let c1 = alphaT * (expm / h + 1), c2 = alphaT * ((expm + h) / (h * h) - 0.5)
        let partial = elementwise(sample, m0) { x, d0 in a * x - c0 * d0 }
        return elementwise(partial, d10, d11) { p, d10, d11 in
            let d1 = d10 + w1 * (d10 - d11), d2 = w2 * (d10 - d11)
            return p + c1 * d1 - c2 * d2
        }
    }
}
