import KolorsEngine

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
