import Foundation
import KolorsEngine

/// Mirrors diffusers' `EulerAncestralDiscreteScheduler`.
public final class EulerAncestralDiscreteScheduler: Scheduler {
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
        let points: [Float]
        switch spacing {
        case .linspace:
            points = numpyLinspace(0, Double(t - 1), steps).reversed().map { Float($0) }
        case .leading:
            let ratio = t / steps
            points = (0..<steps).reversed().map { Float($0 * ratio + stepsOffset) }
        case .trailing:
            points = numpyArange(Double(t), 0, -Double(t) / Double(steps)).map { Float(roundHalfEven($0) - 1) }
        }
        timesteps = points
        sigmas = points.map { Float(interpolate(schedule.sigmas, at: Double($0))) } + [0]
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

    /// Steps to σ_down deterministically, then adds σ_up·randn (drawn every step, also the last).
    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: inout TorchGenerator) -> SchedulerStepOutput {
        let sigma = sigmas[stepIndex]
        let predictedOriginal: Tensor
        if prediction == .epsilon {
            predictedOriginal = elementwise(sample, modelOutput) { x, e in x - sigma * e }
        } else {
            let c = -sigma / (sigma * sigma + 1).squareRoot(), d = sigma * sigma + 1
            predictedOriginal = elementwise(modelOutput, sample) { v, x in v * c + x / d }
        }
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

    /// x0 + σ·n at the step's σ.
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmas[stepIndex]
        return elementwise(original, noise) { x, n in x + n * sigma }
    }
}
