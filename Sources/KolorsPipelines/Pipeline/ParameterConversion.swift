import Foundation
import KolorsEngine
import KolorsImageIO

/// `FILE[:WEIGHT]`, the LoRA syntax of `--lora`, the studio's add-LoRA dialog and its flag: the
/// part after the last colon is the weight when it is a number (a path may contain colons).
public struct LoRASpec: Sendable, Equatable {
    public var path: String
    /// nil: none was written (the default, 1, applies).
    public var weight: Float?

    public init(path: String, weight: Float? = nil) {
        self.path = path
        self.weight = weight
    }

    /// Parses `spec` (surrounding blanks ignored). A weight must be finite and, where
    /// `weightRange` is given, within it; the path must not be empty.
    public static func parse(_ spec: String, weightRange: ClosedRange<Float>? = nil) throws -> LoRASpec {
        let s = spec.trimmingCharacters(in: .whitespaces)
        var result = LoRASpec(path: s)
        if let colon = s.lastIndex(of: ":"), let w = Float(s[s.index(after: colon)...]) {
            guard w.isFinite else { throw GenerationError("LoRA \(spec): the weight must be a finite number") }
            if let r = weightRange, !r.contains(w) {
                throw GenerationError("LoRA \(spec): the weight must be between \(ImageMetadata.formatFloat(r.lowerBound)) and \(ImageMetadata.formatFloat(r.upperBound))")
            }
            result = LoRASpec(path: String(s[..<colon]), weight: w)
        }
        guard !result.path.isEmpty else { throw GenerationError("LoRA \(spec): no file before the weight") }
        return result
    }
}

extension GenerationRequest {
    /// The engine's request for one record of settings (the studio's jobs, the server's, reloads
    /// of a PNG's record): the one conversion from `GenerationParameters`. Image paths (init
    /// image, IP-Adapter reference) are read with `loadImage` after `~` expansion.
    public init(_ p: GenerationParameters, loadImage: (String) throws -> RGBImage = { try PNGFile.read($0).image }) throws {
        self.init(prompt: p.prompt)
        negativePrompts = [p.negativePrompt]
        width = p.width
        height = p.height
        steps = p.steps
        guidance = p.guidance
        seed = p.seed
        scheduler = try SchedulerKind(name: p.scheduler)
        imagesPerPrompt = p.imagesPerPrompt
        // Through the decimal text, so 0.7 stays 0.7 and not 0.69999999 (diffusers uses a Python float).
        strength = Double("\(p.strength)") ?? Double(p.strength)
        if let path = p.initImage { initImage = try loadImage(expandingTilde(path)) }
        if let ip = p.ipAdapter {
            ipAdapter = IPAdapterInput(weights: expandingTilde(ip.path), imageEncoder: ip.imageEncoder.map(expandingTilde),
                                       image: try loadImage(expandingTilde(ip.image)), scale: ip.scale)
        }
        loras = p.loras.map { LoRAInput(path: expandingTilde($0.path), weight: $0.weight) }
        deepCacheInterval = p.deepCacheInterval
    }
}

extension GenerationParameters {
    /// The record of image `index` (batch order) of a run of `request`: that image's prompt and
    /// negative prompt and its size, with the file paths the request's images came from (a
    /// request holds pixels, not paths) and the LoRA files' hashes. The one conversion back
    /// from `GenerationRequest`.
    public init(request r: GenerationRequest, image index: Int, width: Int, height: Int, model: String,
                initImage: String? = nil, ipAdapter: IPAdapterSettings? = nil, loraHashes: [String?] = []) {
        let p = index / max(1, r.imagesPerPrompt)
        let negative = r.negativePrompts.isEmpty ? "" : r.negativePrompts[r.negativePrompts.count == 1 ? 0 : p]
        self.init(prompt: r.prompts[p], negativePrompt: negative, width: width, height: height, steps: r.steps,
                  guidance: r.guidance, seed: r.seed, scheduler: r.scheduler.rawValue, imagesPerPrompt: r.imagesPerPrompt,
                  initImage: initImage, strength: Float(r.strength), model: model, ipAdapter: ipAdapter)
        loras = r.loras.enumerated().map { i, l in
            LoRASettings(path: l.path, weight: l.weight, hash: i < loraHashes.count ? loraHashes[i] : nil)
        }
        deepCacheInterval = r.deepCacheInterval
    }
}
