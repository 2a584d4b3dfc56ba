import Foundation
import KolorsEngine

/// Mirrors diffusers' `EulerDiscreteScheduler` (s_churn = 0, so every step is deterministic).
public final class EulerDiscreteScheduler: Scheduler {
    public let name = "euler"
    public let order = 1
    public private(set) var timesteps: [Float] = []
    /// σ of each timestep, then the σ after the last step (0, or σ_min).
    public private(set) var sigmas: [Float] = []
    public private(set) var initNoiseSigma: Float = 1

    let schedule: NoiseSchedule
    let spacing: TimestepSpacing
    let stepsOffset: Int
    let prediction: PredictionType
    let useKarrasSigmas: Bool
    let sigmaMin: Double?
    let sigmaMax: Double?
    let finalSigmas: FinalSigmas

    public init(config: SchedulerConfig) throws {
        let me = "EulerDiscreteScheduler"
        try config.rejectUnsupported(["use_exponential_sigmas": config.useExponentialSigmas,
                                      "use_beta_sigmas": config.useBetaSigmas], in: me)
        schedule = try NoiseSchedule(config: config, scheduler: me)
        spacing = try config.option(config.timestepSpacing, key: "timestep_spacing", default: .linspace, in: me)
        stepsOffset = config.stepsOffset ?? 0
        // diffusers also accepts "original_sample" for "sample" here.
        prediction = try config.option(config.predictionType == "original_sample" ? "sample" : config.predictionType,
                                       key: "prediction_type", default: .epsilon, in: me)
        useKarrasSigmas = config.useKarrasSigmas ?? false
        sigmaMin = config.sigmaMin
        sigmaMax = config.sigmaMax
        finalSigmas = try config.option(config.finalSigmasType, key: "final_sigmas_type", default: .zero, in: me)
        guard (config.interpolationType ?? "linear") == "linear" else {
            throw SchedulerError("\(me): interpolation_type '\(config.interpolationType!)' is not supported (valid: linear)")
        }
        if config.timestepType == "continuous" && prediction == .vPrediction {
            throw SchedulerError("\(me): timestep_type 'continuous' with v_prediction is not supported")
        }
    }

    public func setTimesteps(_ steps: Int) throws {
        try validateStepCount(steps, trainSteps: schedule.count, in: name)
        let t = schedule.count
        var points: [Double]
        switch spacing {
        case .linspace:
            // np.linspace(..., dtype=float32): the fractional values are rounded to float32 first.
            points = numpyLinspace(0, Double(t - 1), steps).reversed().map { Double(Float($0)) }
        case .leading:
            let ratio = t / steps
            points = (0..<steps).reversed().map { Double($0 * ratio + stepsOffset) }
        case .trailing:
            points = numpyArange(Double(t), 0, -Double(t) / Double(steps)).map { roundHalfEven($0) - 1 }
        }
        var sigmaValues = points.map { interpolate(schedule.sigmas, at: $0) }
        if useKarrasSigmas {
            // The Karras ramp spans the σ of the first and last timestep (unless configured), and
            // the timesteps become the (fractional) training times of the new σ.
            sigmaValues = karrasSigmas(min: sigmaMin ?? sigmaValues.last!, max: sigmaMax ?? sigmaValues[0], count: steps)
            let logSigmas = schedule.logSigmas
            points = sigmaValues.map { sigmaToTimestep($0, logSigmas: logSigmas) }
        }
        let last: Float = finalSigmas == .zero ? 0 : schedule.sigmas[0]
        sigmas = sigmaValues.map { Float($0) } + [last]
        timesteps = points.map { Float($0) }
        let maxSigma = sigmas.max()!
        initNoiseSigma = spacing == .leading ? (maxSigma * maxSigma + 1).squareRoot() : maxSigma
    }

    /// Nothing to record: each step reads its own σ.
    public func setBeginIndex(_ index: Int) {}

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmas[stepIndex]
        let scale = (sigma * sigma + 1).squareRoot()
        return elementwise(sample) { $0 / scale }
    }

    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: inout TorchGenerator) -> SchedulerStepOutput {
        let sigma = sigmas[stepIndex]
        let predictedOriginal: Tensor
        switch prediction {
        case .epsilon:
            predictedOriginal = elementwise(sample, modelOutput) { x, e in x - sigma * e }
        case .vPrediction:
            let c = -sigma / (sigma * sigma + 1).squareRoot(), d = sigma * sigma + 1
            predictedOriginal = elementwise(modelOutput, sample) { v, x in v * c + x / d }
        case .sample:
            predictedOriginal = modelOutput
        }
        let dt = sigmas[stepIndex + 1] - sigma
        let previous = elementwise(sample, predictedOriginal) { x, x0 in x + ((x - x0) / sigma) * dt }
        return SchedulerStepOutput(previousSample: previous, predictedOriginal: predictedOriginal)
    }

    /// x0 + σ·n at the step's σ.
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmas[stepIndex]
        return elementwise(original, noise) { x, n in x + n * sigma }
    }
}
