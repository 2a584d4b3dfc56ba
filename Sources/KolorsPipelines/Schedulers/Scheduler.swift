import KolorsEngine

/// What one denoising step returns.
public struct SchedulerStepOutput: Sendable {
    /// The sample for the next step (diffusers' `prev_sample`).
    public let previousSample: Tensor
    /// The predicted clean latent x0 at this step (diffusers' `pred_original_sample`, or the
    /// solver's converted model output); used for previews.
    public let predictedOriginal: Tensor
}

/// A diffusion sampler equal to its diffusers class. The pipeline calls `setTimesteps`, then
/// for each index i in `timesteps`: `scaleModelInput(x, i)`, runs the UNet at `timesteps[i]`,
/// and `step(ε, i, x)`. Steps must be taken in order (multistep solvers keep history).
public protocol Scheduler: AnyObject {
    /// The name used on the command line and in metadata (`euler`, `dpm++2m-karras`, …).
    var name: String { get }
    /// Timesteps to feed the UNet, in order (diffusers' `scheduler.timesteps`).
    var timesteps: [Float] { get }
    /// diffusers' `init_noise_sigma` for the current schedule.
    var initNoiseSigma: Float { get }
    /// diffusers' `order` (img2img keeps `timesteps[t_start·order…]`).
    var order: Int { get }

    /// Builds the schedule for `steps` inference steps; resets multistep history.
    func setTimesteps(_ steps: Int) throws
    /// Starts stepping at index `index` (img2img); diffusers' `set_begin_index`.
    func setBeginIndex(_ index: Int)
    func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor
    /// One update. `generator` supplies noise for ancestral samplers, drawn in diffusers' order.
    func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: inout TorchGenerator) -> SchedulerStepOutput
    /// Noises clean latents to the level of step `stepIndex` (img2img).
    func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor
}

/// The Euler family's σ-space (k-diffusion) scheduling, shared by Euler and Euler A: the input
/// scaled by 1/√(σ²+1), img2img noise added at σ, no begin index to record, and the clean-latent
/// estimate x0 the prediction type implies at σ.
protocol SigmaScheduler: Scheduler {
    /// σ of each timestep, then the σ after the last step.
    var sigmas: [Float] { get }
    var prediction: PredictionType { get }
}

extension SigmaScheduler {
    /// Nothing to record: each step reads its own σ.
    public func setBeginIndex(_ index: Int) {}

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmas[stepIndex]
        let scale = (sigma * sigma + 1).squareRoot()
        return elementwise(sample) { $0 / scale }
    }

    /// x0 + σ·n at the step's σ.
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmas[stepIndex]
        return elementwise(original, noise) { x, n in x + n * sigma }
    }

    /// diffusers' `init_noise_sigma` for these σ: the largest σ, or √(σ_max²+1) with leading spacing.
    func initialNoiseSigma(spacing: TimestepSpacing) -> Float {
        let maxSigma = sigmas.max() ?? 1
        return spacing == .leading ? (maxSigma * maxSigma + 1).squareRoot() : maxSigma
    }

    /// The predicted clean latent at σ from the UNet's output.
    func predictedOriginal(_ modelOutput: Tensor, sample: Tensor, sigma: Float) -> Tensor {
        switch prediction {
        case .epsilon:
            return elementwise(sample, modelOutput) { x, e in x - sigma * e }
        case .vPrediction:
            let c = -sigma / (sigma * sigma + 1).squareRoot(), d = sigma * sigma + 1
            return elementwise(modelOutput, sample) { v, x in v * c + x / d }
        case .sample:
            return modelOutput
        }
    }
}
