import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines

/// A generator that draws deterministic test patterns (colour gradients keyed by the seed),
/// with real per-step timing, previews and cancellation. It is NOT a model: it exists to test
/// the studio end to end (queue, previews, cancel, saving) without the diffusion engine. The
/// studio labels it on screen; `kolors studio` uses it only when KOLORS_STUDIO_TEST_GENERATOR is set.
public struct TestPatternGenerator: ImageGenerator {
    public var stepDelay: Double
    public var modelDescription: String { "TEST PATTERN generator (not a model)" }
    public var isDemo: Bool { false }

    public init(stepDelay: Double = 0.05) {
        self.stepDelay = stepDelay
    }

    public func countTokens(_ text: String) -> Int? { nil }

    /// The final image for a seed: four quadrant colours rotated by the seed, plus a gradient.
    public static func pattern(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        let palette: [(UInt8, UInt8, UInt8)] = [(230, 40, 40), (40, 200, 60), (40, 80, 230), (240, 240, 240)]
        let rot = Int(seed % 4)
        px.withUnsafeMutableBufferPointer { p in
            for y in 0..<height {
                for x in 0..<width {
                    let q = (y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)
                    let c = palette[(q + rot) % 4]
                    // a gentle diagonal shade, integer maths (cheap even in debug builds)
                    let shade = 218 + 37 * (x + y) / max(1, width + height)
                    let i = (y * width + x) * 3
                    p[i] = UInt8(Int(c.0) * shade / 255)
                    p[i + 1] = UInt8(Int(c.1) * shade / 255)
                    p[i + 2] = UInt8(Int(c.2) * shade / 255)
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    public func generate(_ p: GenerationParameters, cancel: CancellationToken,
                         events: @escaping @Sendable (GenerationEvent) -> Void) throws -> [RGBImage] {
        let steps = max(1, p.steps)
        events(.started(totalSteps: steps))
        let pw = max(8, p.width / 8), ph = max(8, p.height / 8)
        // previews converge from noise to the pattern, at latent size (1/8), like x0 estimates
        let target = Self.pattern(width: pw, height: ph, seed: p.seed)
        var rng = SeedGenerator(state: p.seed)
        let noise = (0..<(pw * ph * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for i in 1...steps {
            let t0 = Date()
            // sleep in small slices so a cancel lands within a fraction of a step
            var slept = 0.0
            while slept < stepDelay {
                try cancel.check()
                let slice = min(0.01, stepDelay - slept)
                Thread.sleep(forTimeInterval: slice)
                slept += slice
            }
            try cancel.check()
            let a = Double(i) / Double(steps)
            var px = [UInt8](repeating: 0, count: pw * ph * 3)
            let wa = Int(a * 256)
            for k in px.indices { px[k] = UInt8((Int(target.pixels[k]) * wa + Int(noise[k]) * (256 - wa)) >> 8) }
            events(.step(index: i, total: steps, secondsPerStep: Date().timeIntervalSince(t0),
                         preview: RGBImage(width: pw, height: ph, pixels: px)))
        }
        try cancel.check()
        events(.decoding)
        var images: [RGBImage] = []
        for b in 0..<max(1, p.imagesPerPrompt) {
            try cancel.check()
            images.append(Self.pattern(width: p.width, height: p.height, seed: p.seed &+ UInt64(b)))
        }
        events(.finished)
        return images
    }
}
