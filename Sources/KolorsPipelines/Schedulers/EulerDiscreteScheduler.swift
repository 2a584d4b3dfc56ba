import Foundation
import KolorsEngine

/// Mirrors diffusers' `EulerDiscreteScheduler` (s_churn = 0, so every step is deterministic).
public final class EulerDiscreteScheduler: SigmaScheduler {
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
        // np.linspace(..., dtype=float32): the fractional values are rounded to float32.
        points = spacing.timesteps(steps: steps, trainSteps: t, offset: stepsOffset, rounding: .float32)
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
        initNoiseSigma = initialNoiseSigma(spacing: spacing)
    }

    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: inout TorchGenerator) -> SchedulerStepOutput {
        let sigma = sigmas[stepIndex]
        let predictedOriginal = self.predictedOriginal(modelOutput, sample: sample, sigma: sigma)
        let dt = sigmas[stepIndex + 1] - sigma
        let previous = elementwise(sample, predictedOriginal) { x, x0 in x + ((x - x0) / sigma) * dt }
        return SchedulerStepOutput(previousSample: previous, predictedOriginal: predictedOriginal)
    }
}
