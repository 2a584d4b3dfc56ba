import Foundation
import KolorsEngine

/// Mirrors diffusers' `EulerAncestralDiscreteScheduler`.
public final class EulerAncestralDiscreteScheduler: SigmaScheduler {
    public let name = "euler-a"
    public let order = 1
    public private(set) var timesteps: [Float] = []
    /// σ of each timestep, then 0.
    public private(set) var sigmas: [Float] = []
    public private(set) var initNoiseSigma: Float = 1

    let schedule: NoiseSchedule
    let spacing: TimestepSpacing
    let stepsOffset: Int
    let prediction: PredictionType

    public init(config: SchedulerConfig) throws {
        let me = "EulerAncestralDiscreteScheduler"
        schedule = try NoiseSchedule(config: config, scheduler: me)
        spacing = try config.option(config.timestepSpacing, key: "timestep_spacing", default: .linspace, in: me)
        stepsOffset = config.stepsOffset ?? 0
        prediction = try config.option(config.predictionType, key: "prediction_type", default: .epsilon, in: me)
        guard prediction != .sample else { throw SchedulerError("\(me): prediction_type 'sample' is not supported") }
    }

    public func setTimesteps(_ steps: Int) throws {
        try validateStepCount(steps, trainSteps: schedule.count, in: name)
        let t = schedule.count
        let points = spacing.timesteps(steps: steps, trainSteps: t, offset: stepsOffset, rounding: .float32).map { Float($0) }
        timesteps = points
        sigmas = points.map { Float(interpolate(schedule.sigmas, at: Double($0))) } + [0]
        initNoiseSigma = initialNoiseSigma(spacing: spacing)
    }

    /// Steps to σ_down deterministically, then adds σ_up·randn (drawn every step, also the last).
    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: inout TorchGenerator) -> SchedulerStepOutput {
        let sigma = sigmas[stepIndex]
        let predictedOriginal = self.predictedOriginal(modelOutput, sample: sample, sigma: sigma)
        let from = sigma, to = sigmas[stepIndex + 1]
        let sigmaUp = (to * to * (from * from - to * to) / (from * from)).squareRoot()
        let sigmaDown = (to * to - sigmaUp * sigmaUp).squareRoot()
        let dt = sigmaDown - sigma
        let noise = generator.randn(modelOutput.shape)
        let previous = elementwise(sample, predictedOriginal, noise) { x, x0, n in
            (x + ((x - x0) / sigma) * dt) + n * sigmaUp
        }
        return SchedulerStepOutput(previousSample: previous, predictedOriginal: predictedOriginal)
    }
}
