import Foundation
import KolorsEngine

/// Mirrors diffusers' `DDIMScheduler` with eta = 0 (what the Kolors pipelines pass): no noise.
public final class DDIMScheduler: Scheduler {
    public let name = "ddim"
    public let order = 1
    public private(set) var timesteps: [Float] = []
    /// Latents stay in VP space: no input scaling and unit initial noise.
    public let initNoiseSigma: Float = 1

    let schedule: NoiseSchedule
    let spacing: TimestepSpacing
    let stepsOffset: Int
    let prediction: PredictionType
    let clipSampleRange: Float?
    /// ᾱ after the last step: 1, or ᾱ_0 when `set_alpha_to_one` is false (Kolors' config).
    let finalAlphaCumprod: Float
    /// The requested step count; the step to the previous timestep is num_train_timesteps // it.
    private var stepCount = 0

    public init(config: SchedulerConfig) throws {
        let me = "DDIMScheduler"
        try config.rejectUnsupported(["thresholding": config.thresholding], in: me)
        schedule = try NoiseSchedule(config: config, scheduler: me)
        spacing = try config.option(config.timestepSpacing, key: "timestep_spacing", default: .leading, in: me)
        stepsOffset = config.stepsOffset ?? 0
        prediction = try config.option(config.predictionType, key: "prediction_type", default: .epsilon, in: me)
        clipSampleRange = (config.clipSample ?? true) ? Float(config.clipSampleRange ?? 1) : nil
        finalAlphaCumprod = (config.setAlphaToOne ?? true) ? 1 : schedule.alphasCumprod[0]
    }

    public func setTimesteps(_ steps: Int) throws {
        try validateStepCount(steps, trainSteps: schedule.count, in: name)
        let t = schedule.count
        let points: [Double]
        points = spacing.timesteps(steps: steps, trainSteps: t, offset: stepsOffset, rounding: .halfEven)
        timesteps = points.map { Float($0) }
        stepCount = steps
    }

    /// Nothing to record: each step reads its own timestep.
    public func setBeginIndex(_ index: Int) {}

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: inout TorchGenerator) -> SchedulerStepOutput {
        let t = Int(timesteps[stepIndex])
        let previousT = t - schedule.count / stepCount
        let alphaT = alphaCumprod(at: t)
        let alphaPrevious = previousT >= 0 ? alphaCumprod(at: previousT) : finalAlphaCumprod
        let betaT = 1 - alphaT
        let sqrtAlpha = alphaT.squareRoot(), sqrtBeta = betaT.squareRoot()

        var predictedOriginal: Tensor
        let epsilon: Tensor
        switch prediction {
        case .epsilon:
            predictedOriginal = elementwise(sample, modelOutput) { x, e in (x - sqrtBeta * e) / sqrtAlpha }
            epsilon = modelOutput
        case .sample:
            predictedOriginal = modelOutput
            epsilon = elementwise(sample, modelOutput) { x, x0 in (x - sqrtAlpha * x0) / sqrtBeta }
        case .vPrediction:
            predictedOriginal = elementwise(sample, modelOutput) { x, v in sqrtAlpha * x - sqrtBeta * v }
            epsilon = elementwise(modelOutput, sample) { v, x in sqrtAlpha * v + sqrtBeta * x }
        }
        if let range = clipSampleRange {
            predictedOriginal = elementwise(predictedOriginal) { min(max($0, -range), range) }
        }
        let direction = (1 - alphaPrevious).squareRoot(), scale = alphaPrevious.squareRoot()
        let previous = elementwise(predictedOriginal, epsilon) { x0, e in scale * x0 + direction * e }
        return SchedulerStepOutput(previousSample: previous, predictedOriginal: predictedOriginal)
    }

    /// √ᾱ_t·x0 + √(1−ᾱ_t)·n at the step's timestep.
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let alpha = alphaCumprod(at: Int(timesteps[stepIndex]))
        let a = alpha.squareRoot(), s = (1 - alpha).squareRoot()
        return elementwise(original, noise) { x, n in a * x + s * n }
    }

    /// ᾱ_t indexed as torch does: the "trailing" spacing can produce t = −1, which reads the last entry.
    private func alphaCumprod(at t: Int) -> Float {
        schedule.alphasCumprod[t >= 0 ? t : schedule.count + t]
    }
}
