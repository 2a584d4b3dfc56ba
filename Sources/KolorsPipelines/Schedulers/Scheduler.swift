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
