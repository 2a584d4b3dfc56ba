import KolorsEngine

/// DeepCache (Ma, Fang & Wang, 2023: "DeepCache: Accelerating Diffusion Models for Free"), an
/// **approximation** for drafts, off unless asked for: the UNet's deep features change little
/// from one denoising step to the next, so every `interval`-th step runs the whole UNet and
/// keeps the hidden state entering the last up block's second-to-last layer, and the steps in
/// between run only the shallow path — conv_in, the first down block's first layer, the last up
/// block's last two layers (with those skips), conv_out — on that kept feature. This is the
/// paper's SDXL code with `cache_interval = interval`, `cache_layer_id = 0`,
/// `cache_block_id = 0` and uniform skipping. At 1024² a shallow step costs ~4 % of a full one.
public final class DeepCache: @unchecked Sendable {
    /// Steps between full passes (≥ 2; 1 would be no caching).
    public let interval: Int
    /// The deep feature kept by the last full pass.
    var feature: Tensor?

    public static let intervals = 2...10

    public init(interval: Int) {
        precondition(Self.intervals.contains(interval), "DeepCache interval \(interval) outside \(Self.intervals)")
        self.interval = interval
    }

    /// What step `index` (0-based within a run) does: the first step, and every `interval`-th
    /// after it, runs the whole UNet.
    public func pass(step index: Int) -> Pass { index % interval == 0 || feature == nil ? .full(self) : .shallow(self) }

    public enum Pass: Sendable {
        /// The whole UNet, keeping the deep feature.
        case full(DeepCache)
        /// The shallow path on the kept feature.
        case shallow(DeepCache)
    }
}
