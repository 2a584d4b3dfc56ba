import Foundation
import KolorsPipelines

/// The fields of the studio in focus order (Tab / Shift-Tab): the order they appear on screen,
/// left to right and top to bottom (Steps, CFG and Images share a row; Sampler and Strength too).
public enum Field: Int, CaseIterable, Sendable, Equatable {
    case prompt, negative, steps, guidance, images, seed, size, scheduler, strength, initImage
    /// IP-Adapter: the reference image path, and its scale.
    case ipImage, ipScale
    /// The LoRA list (one field; ↑/↓ select inside it).
    case loras

    public var label: String {
        switch self {
        case .prompt: "Prompt"
        case .negative: "Negative prompt"
        case .steps: "Steps"
        case .guidance: "CFG"
        case .seed: "Seed"
        case .size: "Size"
        case .scheduler: "Sampler"
        case .images: "Images"
        case .initImage: "Init image"
        case .strength: "Strength"
        case .ipImage: "Reference image"
        case .ipScale: "IP scale"
        case .loras: "LoRAs"
        }
    }

    public var next: Field { Field(rawValue: (rawValue + 1) % Field.allCases.count)! }
    public var previous: Field { Field(rawValue: (rawValue + Field.allCases.count - 1) % Field.allCases.count)! }
    /// Fields edited with a text editor (the rest are value fields).
    public var isTextEditor: Bool { self == .prompt || self == .negative || self == .initImage || self == .ipImage }
    /// Single-line path editors in the parameters pane.
    public var isPathField: Bool { self == .initImage || self == .ipImage }
    /// Value fields that take typed digits.
    public var acceptsTypedNumber: Bool { [.steps, .guidance, .seed, .size, .images, .strength, .ipScale, .loras].contains(self) }
    /// Fields drawn in the parameters pane.
    public var isParameter: Bool { self != .prompt && self != .negative }
}

/// A named size that suits Kolors (SDXL-class buckets near one megapixel, plus small ones for
/// quick tries and the demo model).
public struct SizePreset: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public init(_ width: Int, _ height: Int) { self.width = width; self.height = height }

    public var aspectLabel: String {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let g = gcd(width, height)
        let (a, b) = (width / g, height / g)
        if a <= 21 && b <= 21 { return "\(a):\(b)" }
        let r = Double(width) / Double(height)
        return r >= 1 ? String(format2(r)) + ":1" : "1:" + String(format2(1 / r))
    }

    private func format2(_ x: Double) -> String {
        let v = (x * 100).rounded() / 100
        return v == v.rounded() ? "\(Int(v))" : "\(v)"
    }
}

/// Limits, steps and presets for the value fields. All edits go through here.
public enum ParameterRules {
    public static let sizePresets: [SizePreset] = [
        SizePreset(1024, 1024), SizePreset(1152, 896), SizePreset(896, 1152), SizePreset(1216, 832),
        SizePreset(832, 1216), SizePreset(1344, 768), SizePreset(768, 1344), SizePreset(1536, 640),
        SizePreset(640, 1536), SizePreset(768, 768), SizePreset(512, 512), SizePreset(256, 256),
    ]
    public static let stepsRange = 1...200
    public static let guidanceRange: ClosedRange<Float> = 0...30
    public static let guidanceStep: Float = 0.5
    public static let imagesRange = 1...8
    public static let strengthRange: ClosedRange<Float> = 0.01...1
    public static let strengthStep: Float = 0.05
    /// Sizes follow `kolors generate` (and the pipeline's check): multiples of 8 (latents are 1/8
    /// of the image; the UNet handles odd latent sizes as diffusers does), at most 4096.
    public static let sizeMultiple = 8
    public static let sizeRange = 8...4096
    /// The demo checkpoint's default size: its images are noise at any size, so small is enough.
    public static let demoSize = 256
    public static let schedulers = SchedulerKind.allCases
    /// IP-Adapter scale: 0 turns the image prompt off; 1 is diffusers' default.
    public static let ipScaleRange: ClosedRange<Float> = 0...2
    public static let ipScaleStep: Float = 0.05
    public static let defaultIPScale: Float = 1.0
    /// LoRA weights (A1111's slider range).
    public static let loraWeightRange: ClosedRange<Float> = -2...2
    public static let loraWeightStep: Float = 0.05

    public static func clampSteps(_ n: Int) -> Int { min(max(n, stepsRange.lowerBound), stepsRange.upperBound) }
    public static func clampImages(_ n: Int) -> Int { min(max(n, imagesRange.lowerBound), imagesRange.upperBound) }
    public static func clampGuidance(_ g: Float) -> Float {
        guard g.isFinite else { return GenerationParameters.defaultGuidance }
        return min(max((g * 100).rounded() / 100, guidanceRange.lowerBound), guidanceRange.upperBound)
    }
    public static func clampStrength(_ s: Float) -> Float {
        guard s.isFinite else { return GenerationParameters.defaultStrength }
        return min(max((s * 100).rounded() / 100, strengthRange.lowerBound), strengthRange.upperBound)
    }
    public static func clampIPScale(_ x: Float) -> Float {
        guard x.isFinite else { return defaultIPScale }
        return min(max((x * 100).rounded() / 100, ipScaleRange.lowerBound), ipScaleRange.upperBound)
    }
    public static func clampLoRAWeight(_ w: Float) -> Float {
        guard w.isFinite else { return 1 }
        let r = (w * 100).rounded() / 100
        return min(max(r == 0 ? 0 : r, loraWeightRange.lowerBound), loraWeightRange.upperBound)   // no "-0.00"
    }
    /// Weights and scales as the studio shows them: two decimals ("0.80", "-1.25").
    public static func formatWeight(_ w: Float) -> String { String(format: "%.2f", w == 0 ? 0 : w) }

    /// Rounds to the nearest multiple of 8 within 8…4096 (`kolors generate`'s rule).
    public static func clampDimension(_ d: Int) -> Int {
        let m = sizeMultiple
        let c = min(max(d, sizeRange.lowerBound), sizeRange.upperBound)
        let r = ((c + m / 2) / m) * m
        return min(max(r, sizeRange.lowerBound), sizeRange.upperBound)
    }

    /// The rule sizes follow, for messages.
    public static var sizeRuleText: String { "multiples of \(sizeMultiple), \(sizeRange.lowerBound)…\(sizeRange.upperBound)" }

    /// Index of the preset equal to the size, if any.
    public static func presetIndex(width: Int, height: Int) -> Int? {
        sizePresets.firstIndex { $0.width == width && $0.height == height }
    }

    /// The next (delta = +1) or previous (-1) preset; from a custom size, the preset nearest in pixel count and aspect.
    public static func cyclePreset(width: Int, height: Int, by delta: Int) -> SizePreset {
        let n = sizePresets.count
        if let i = presetIndex(width: width, height: height) {
            return sizePresets[((i + delta) % n + n) % n]
        }
        let aspect = Double(width) / Double(height)
        let nearest = sizePresets.indices.min { a, b in
            func cost(_ p: SizePreset) -> Double {
                abs(log(Double(p.width) / Double(p.height) / aspect)) + abs(log(Double(p.width * p.height) / Double(width * height)))
            }
            return cost(sizePresets[a]) < cost(sizePresets[b])
        }!
        return sizePresets[nearest]
    }

    /// Parses a typed size: "1024x768", "1024×768", "1024 768", or one number for a square.
    /// The result follows `clampDimension`; `adjusted` says whether that changed what was typed.
    public static func parseSize(_ s: String) -> (width: Int, height: Int, adjusted: Bool)? {
        let parts = s.lowercased().split(whereSeparator: { $0 == "x" || $0 == "×" || $0 == " " || $0 == "*" })
        let typed: (Int, Int)
        if parts.count == 1, let d = Int(parts[0]) {
            typed = (d, d)
        } else if parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]) {
            typed = (w, h)
        } else {
            return nil
        }
        let (w, h) = (clampDimension(typed.0), clampDimension(typed.1))
        return (w, h, w != typed.0 || h != typed.1)
    }

    public static func cycleScheduler(_ s: String, by delta: Int) -> String {
        let all = schedulers
        let i = all.firstIndex { $0.rawValue == s } ?? 0
        return all[((i + delta) % all.count + all.count) % all.count].rawValue
    }
}

/// SplitMix64: the studio's deterministic source of fresh seeds (its state lives in `StudioState`,
/// so the reducer stays a pure function).
public struct SeedGenerator: Sendable, Equatable {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Seeds people can read and type: below 2^32, like most UIs show.
    public mutating func nextSeed() -> UInt64 { next() & 0xFFFF_FFFF }
}
