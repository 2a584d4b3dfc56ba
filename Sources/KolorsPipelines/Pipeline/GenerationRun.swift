import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsModels

/// One prepared generation (`KolorsPipeline.prepare`), driven by its caller as mlx-swift-examples'
/// `DenoiseIterator` is: `next()` runs one denoising step (classifier-free guidance, scheduler
/// step) and returns it; `decode()` turns the final latents into images. Front ends — the CLI's
/// progress line, the studio, benchmarks, the server — make previews and ETAs from the steps
/// (`StepClock`) and check cancellation between them; `cancel` is also checked inside a step.
/// One caller at a time.
public final class GenerationRun: @unchecked Sendable {
    public let request: GenerationRequest
    /// Steps this run takes (fewer than `request.steps` for img2img).
    public var totalSteps: Int { steps.count }
    /// Steps taken so far.
    public private(set) var completedSteps = 0
    /// The latents now ([B, 4, h, w], model space).
    public private(set) var latents: Tensor
    /// Whether preparing ran the text encoder (false: every prompt came from the cache).
    public let textEncoderRan: Bool
    /// Wall-clock seconds per phase so far (text_encoder, image_encoder, vae_encode, unet, vae_decode).
    public private(set) var timings: [String: Double]

    let pipeline: KolorsPipeline
    let unet: UNet2DConditionModel
    let conditioning: UNetConditioning
    let scheduler: Scheduler
    var generator: TorchGenerator
    let steps: [Int]
    let guided: Bool
    let deepCache: DeepCache?
    let cancel: CancellationToken?

    /// One finished denoising step: `index` is 1-based; `predictedOriginal` is the x0 estimate
    /// [B, 4, h, w] in model space, for previews.
    public struct Step: Sendable {
        public let index: Int
        public let total: Int
        public let latents: Tensor
        public let predictedOriginal: Tensor
    }

    init(pipeline: KolorsPipeline, request: GenerationRequest, unet: UNet2DConditionModel, conditioning: UNetConditioning,
         scheduler: Scheduler, generator: TorchGenerator, latents: Tensor, steps: [Int], guided: Bool, deepCache: DeepCache?,
         textEncoderRan: Bool, timings: [String: Double], cancel: CancellationToken?) {
        self.pipeline = pipeline
        self.request = request
        self.unet = unet
        self.conditioning = conditioning
        self.scheduler = scheduler
        self.generator = generator
        self.latents = latents
        self.steps = steps
        self.guided = guided
        self.deepCache = deepCache
        self.textEncoderRan = textEncoderRan
        self.timings = timings
        self.cancel = cancel
    }

    deinit { TensorStorage.pool.drain() }  // kept large buffers do not outlive the run

    private func timed<T>(_ key: String, _ body: () throws -> T) rethrows -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { timings[key, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        return try body()
    }

    /// Runs the next denoising step; nil when every step is done.
    public func next() throws -> Step? {
        guard completedSteps < steps.count else { return nil }
        try cancel?.check()
        let n = completedSteps, i = steps[n]
        let total = latents.shape[0]
        let input = scheduler.scaleModelInput(guided ? concat([latents, latents], dim: 0) : latents, stepIndex: i)
        var noisePred = try timed("unet") {
            try unet(input, timesteps: [scheduler.timesteps[i]], conditioning: conditioning,
                     deepCache: deepCache?.pass(step: n), cancel: cancel)
        }
        if guided {
            let uncond = noisePred.slice(0..<total), text = noisePred.slice(total..<(2 * total))
            let guidedPred = Tensor(shape: uncond.shape, zeroed: false)
            let g = request.guidance
            let pu = uncond.pointer, pt = text.pointer, po = guidedPred.pointer
            for k in 0..<guidedPred.count { po[k] = pu[k] + g * (pt[k] - pu[k]) }
            noisePred = guidedPred
        }
        let out = scheduler.step(modelOutput: noisePred, stepIndex: i, sample: latents, generator: &generator)
        // Stop at the first step that overflows: NaN never recovers, and saying which step beats
        // a black image (or a trap) at the end.
        if let bad = KolorsPipeline.firstNonFinite(out.previousSample) {
            throw GenerationError("step \(n + 1) of \(steps.count) produced \(bad.isNaN ? "NaN" : "infinite") latents (guidance \(request.guidance)): the settings or the weights overflow; `kolors info --load-weights` checks the weights")
        }
        latents = out.previousSample
        completedSteps += 1
        return Step(index: completedSteps, total: steps.count, latents: latents, predictedOriginal: out.predictedOriginal)
    }

    /// The final latents as images (batch order: prompt 0's images, then prompt 1's, …) and as
    /// floats in [0, 1], NHWC (diffusers' `output_type="np"`). Tiled as diffusers'
    /// `vae.enable_tiling()` when `request.vaeTileLatent` is set and the latent exceeds a tile.
    /// `loading` names the VAE if it loads now; `decoding` is called when it starts to decode.
    /// `warnings` says when the decoder produced NaN or ±∞ pixels (written as 0 or clamped).
    public func decode(loading: ((String) -> Void)? = nil, decoding: (() -> Void)? = nil) throws
        -> (images: [RGBImage], pixels: Tensor, warnings: [String]) {
        try cancel?.check()
        let vae = try pipeline.decoder(loading)
        decoding?()
        let scaled = Tensor(shape: latents.shape, zeroed: false)
        let sf = pipeline.vaeConfig.scalingFactor
        for k in 0..<latents.count { scaled.pointer[k] = latents.pointer[k] / sf }
        let decoded = try timed("vae_decode") {
            if let tile = request.vaeTileLatent, scaled.shape[2] > tile || scaled.shape[3] > tile {
                return try vae.tiledDecode(scaled, tileLatent: tile, cancel: cancel)
            }
            return try vae.decode(scaled, cancel: cancel)
        }
        let (pixels, images, nonFinite) = ImageConversion.postprocess(decoded)
        let warnings = nonFinite == 0 ? [] : [
            "the VAE decoder produced \(nonFinite) NaN or infinite pixel values (written as 0 or clamped): its weights may be damaged; `kolors info --load-weights` checks them",
        ]
        return (images, pixels, warnings)
    }

    /// The run's result: decoded unless `request.decode` is off. Call after the last step.
    public func result(loading: ((String) -> Void)? = nil, decoding: (() -> Void)? = nil) throws -> GenerationResult {
        guard request.decode else { return GenerationResult(latents: latents, images: [], pixels: nil, timings: timings) }
        let (images, pixels, warnings) = try decode(loading: loading, decoding: decoding)
        var result = GenerationResult(latents: latents, images: images, pixels: pixels, timings: timings)
        result.warnings = warnings
        return result
    }
}

/// Seconds per step and the time left, for front ends' progress displays: the mean of the last
/// three steps (the first step also pays for touching the weights).
public struct StepClock: Sendable {
    private var last = DispatchTime.now().uptimeNanoseconds
    private var recent: [Double] = []

    public init() {}

    /// Marks a finished step; returns seconds per step and the estimated seconds left.
    public mutating func tick(remaining: Int) -> (secondsPerStep: Double, eta: Double) {
        let now = DispatchTime.now().uptimeNanoseconds
        recent.append(Double(now - last) / 1e9)
        last = now
        if recent.count > 3 { recent.removeFirst() }
        let perStep = recent.reduce(0, +) / Double(recent.count)
        return (perStep, perStep * Double(max(0, remaining)))
    }
}
