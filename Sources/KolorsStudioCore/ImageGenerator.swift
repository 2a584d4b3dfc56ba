import KolorsEngine
import KolorsImageIO
import KolorsPipelines

/// Progress reported by an `ImageGenerator` while it works. Events may arrive from any thread;
/// the studio forwards them to its UI thread.
public enum GenerationEvent: Sendable, Equatable {
    /// Loading or preparing weights; `fraction` in 0…1 when known.
    case loading(String, fraction: Double?)
    /// Denoising begins.
    case started(totalSteps: Int)
    /// Step `index` (1-based) of `total` is done. `preview` is an RGB rendering of the current
    /// estimate (e.g. `LatentPreview.rgb` of x0), at any size; nil when none is available.
    case step(index: Int, total: Int, secondsPerStep: Double, preview: RGBImage?)
    /// The VAE is decoding the final latents.
    case decoding
    /// The images are ready (generate returns right after).
    case finished
}

/// The one seam between the studio and the diffusion engine. The pipelines implement it; the
/// studio calls `generate` on a background queue and never on its UI thread.
///
/// Contract:
/// - `generate` runs synchronously on the caller's queue and returns `imagesPerPrompt` images
///   of `width` × `height`.
/// - It checks `cancel` often (at least once per step and inside long layers) and throws
///   `CancellationError` (from KolorsEngine) when cancelled; the studio then keeps the last preview
///   and writes no file.
/// - `events` may be called from any thread, and should be called at least once per step.
/// - Other errors are shown to the user with their `description`.
public protocol ImageGenerator: Sendable {
    /// Shown in the status line, e.g. "Kolors fp16 (~/models/Kolors-diffusers)".
    var modelDescription: String { get }
    /// True for the random-weight demo checkpoint: the studio shows a banner saying so.
    var isDemo: Bool { get }
    /// Tokens `text` takes with the real tokenizer (the limit is 256); nil when unavailable.
    /// Called on the UI thread after edits: it must be fast (well under a millisecond per 100 characters).
    func countTokens(_ text: String) -> Int?
    /// Runs synchronously on the caller's (background) queue; checks `cancel` often; throws
    /// CancellationError when cancelled.
    func generate(_ parameters: GenerationParameters, cancel: CancellationToken,
                  events: @escaping @Sendable (GenerationEvent) -> Void) throws -> [RGBImage]
    /// The engine's arithmetic ("fp32", "bf16"), recorded with each image; nil when not a model.
    var computePrecision: String? { get }
}

extension ImageGenerator {
    public var computePrecision: String? { nil }
}

/// What the studio hands its generator factory.
public struct GeneratorRequest: Sendable, Equatable {
    /// `--model` as typed: a diffusers folder, an HF cache folder or a repo id; nil = default/demo.
    public var model: String?
    /// `--threads`; nil = the engine's default.
    public var threads: Int?
    public init(model: String? = nil, threads: Int? = nil) {
        self.model = model
        self.threads = threads
    }
}

/// Makes the generator. Called once on a background queue at startup; it may take long (it can
/// load weights) and reports progress with `.loading` events. Errors are shown on screen and
/// the studio stays usable for editing and browsing the gallery.
public typealias GeneratorFactory = @Sendable (GeneratorRequest, _ progress: @escaping @Sendable (GenerationEvent) -> Void) throws -> any ImageGenerator

extension GenerationParameters {
    /// The parameters recorded with image `index` of this job's batch: with seed+i batches each
    /// image records its own seed (as A1111 does), so it can be remade alone.
    public func forBatchImage(_ index: Int) -> GenerationParameters {
        var p = self
        if batchSeeds == .increment { p.seed = seed &+ UInt64(max(0, index)) }
        return p
    }
}

extension ImageGenerator {
    /// Runs a job's batch as `batchSeeds` asks: `.shared` in one call (one generator for the
    /// batch, as diffusers); `.increment` as one call per image with seed + i (A1111), each the
    /// same as a one-image job with that seed. Steps are reported across the whole batch.
    public func generateBatch(_ p: GenerationParameters, cancel: CancellationToken,
                              events: @escaping @Sendable (GenerationEvent) -> Void) throws -> [RGBImage] {
        let n = max(1, p.imagesPerPrompt)
        guard p.batchSeeds == .increment, n > 1 else { return try generate(p, cancel: cancel, events: events) }
        var images: [RGBImage] = []
        for i in 0..<n {
            var one = p.forBatchImage(i)
            one.imagesPerPrompt = 1
            let first = i == 0, last = i == n - 1
            let made = try generate(one, cancel: cancel) { event in
                switch event {
                case .started(let total):
                    if first { events(.started(totalSteps: total * n)) }
                case .step(let index, let total, let sps, let preview):
                    events(.step(index: i * total + index, total: total * n, secondsPerStep: sps, preview: preview))
                case .finished:
                    if last { events(.finished) }
                default:
                    events(event)
                }
            }
            images += made
        }
        return images
    }
}
