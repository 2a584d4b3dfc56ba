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
        for y in 0..<height {
            for x in 0..<width {
                let q = (y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)
                let c = palette[(q + rot) % 4]
                let i = (y * width + x) * 3
                let shade = 0.85 + 0.15 * Double(x + y) / Double(max(1, width + height))
                px[i] = UInt8(Double(c.0) * shade)
                px[i + 1] = UInt8(Double(c.1) * shade)
                px[i + 2] = UInt8(Double(c.2) * shade)
            }
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    public func generate(_ p: GenerationParameters, cancel: CancellationToken,
                         events: @escaping @Sendable (GenerationEvent) -> Void) throws -> [RGBImage] {
        let steps = max(1, p.steps)
        events(.started(totalSteps: steps))
        let pw = max(8, p.width / 8), ph = max(8, p.height / 8)
        var images: [RGBImage] = []
        for b in 0..<max(1, p.imagesPerPrompt) {
            images.append(Self.pattern(width: p.width, height: p.height, seed: p.seed &+ UInt64(b)))
        }
        let target = LatentPreview.resize(images[0], width: pw, height: ph, filter: .smooth)
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
            for k in px.indices { px[k] = UInt8(Double(target.pixels[k]) * a + Double(noise[k]) * (1 - a)) }
            events(.step(index: i, total: steps, secondsPerStep: Date().timeIntervalSince(t0),
                         preview: RGBImage(width: pw, height: ph, pixels: px)))
        }
        try cancel.check()
        events(.decoding)
        events(.finished)
        return images
    }
}
