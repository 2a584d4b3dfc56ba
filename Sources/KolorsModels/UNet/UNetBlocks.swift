import KolorsEngine

/// What the UNet needs from any down block: the output and the skip tensors it produced.
public protocol UNetDownBlock: AnyObject, Sendable {
    func callAsFunction(_ x: Tensor, siluTemb: Tensor, context: CrossAttentionContext, cancel: CancellationToken?) throws -> (Tensor, [Tensor])
}

/// What the UNet needs from any up block: consume skips (last first), optionally upsample
/// to an explicit size.
public protocol UNetUpBlock: AnyObject, Sendable {
    var resnetCount: Int { get }
    var hasUpsampler: Bool { get }
    func callAsFunction(_ x: Tensor, skips: [Tensor], siluTemb: Tensor, context: CrossAttentionContext,
                        upsampleSize: (Int, Int)?, cancel: CancellationToken?) throws -> Tensor
}

/// The shared construction parameters of one UNet level.
struct LevelSpec {
    let inChannels: Int
    let outChannels: Int
    let prevOutChannels: Int  // up blocks only
    let layers: Int
    let heads: Int
    let depth: Int
    let contextDim: Int
    let tembChannels: Int
    let groups: Int
    let eps: Float
    let linearProjection: Bool
    let resample: Bool
    let downsamplePadding: Int
}
