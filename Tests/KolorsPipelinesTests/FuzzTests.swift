import Foundation
@testable import KolorsEngine
import KolorsImageIO
import KolorsModels
import KolorsPipelines
import Testing
import KolorsTestSupport

/// Bounded random-mutation fuzzing (issue 15): fixed seeds and iteration counts, about a
/// second or two per target, so this class of bug stays fixed in CI. Every input must give a
/// value or a thrown error — a trap ends the whole test run — within a time bound.
@Suite("fuzz: parsers and decoders")
struct FuzzTests {
    // MARK: - A1111 parameters

    /// The pattern the parser used before it became a scanner (A1111's own).
    nonisolated(unsafe) static let referencePattern =
        try! Regex(#"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#)
    nonisolated(unsafe) static let referenceLoRA = try! Regex(#"<lora:([^:>]+)(?::([-+0-9.eE]+))?[^>]*>"#)

    static let alphabet: [String] = ["a", "b", "Z", "_", "7", " ", " ", "-", "/", ":", ":", ",", ",", "\"", "\\", "\t",
                                     "中", "é", "<", ">", "lora", "<lora:", ".", "e", "+", "!", "Steps", "x"]

    static func randomLine(_ rng: inout SeededRandom, maxPieces: Int = 40) -> String {
        (0..<Int.random(in: 0...maxPieces, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined()
    }

    @Test("the A1111 scanner finds exactly the pairs A1111's regex finds (4000 random lines)")
    func parameterPairsMatchTheRegex() {
        var rng = SeededRandom(seed: 15)
        for _ in 0..<4000 {
            let line = Self.randomLine(&rng)
            let want = line.matches(of: Self.referencePattern).compactMap { m -> String? in
                guard let k = m.output[1].substring, let v = m.output[2].substring else { return nil }
                return "\(k)=\(v)"
            }
            let got = ImageMetadata.parameterPairs(line).map { "\($0.key)=\($0.value)" }
            #expect(got == want, "line: \(line.debugDescription)")
            if got != want { return }
        }
    }

    @Test("LoRA tags come out of prompts exactly as the regex took them (3000 random prompts)")
    func loraTagsMatchTheRegex() {
        var rng = SeededRandom(seed: 16)
        for _ in 0..<3000 {
            let prompt = Self.randomLine(&rng, maxPieces: 30)
            var loras: [String] = []
            let stripped = prompt.replacing(Self.referenceLoRA) { m in
                let weight = m.output[2].substring.flatMap { Float($0) }.flatMap { $0.isFinite ? $0 : nil } ?? 1
                loras.append("\(m.output[1].substring ?? ""):\(weight)")
                return ""
            }
            let text = "\(prompt)\nSteps: 5, Sampler: Euler, CFG scale: 7"
            guard let parsed = ImageMetadata.parseA1111(text) else { continue }
            #expect(parsed.parameters.loras.map { "\($0.path):\($0.weight)" } == loras, "prompt: \(prompt.debugDescription)")
            let line = prompt.trimmingCharacters(in: .whitespaces)
            let want = loras.isEmpty ? line
                : stripped.replacing(#/ {2,}/#, with: " ").replacing(#/ *\n */#, with: "\n").trimmingCharacters(in: .whitespaces)
            #expect(parsed.parameters.prompt == want, "prompt: \(prompt.debugDescription)")
        }
    }

    @Test("long one-line parameters parse in linear time; text over the cap is not parsed")
    func linearTime() {
        let cases = [
            String(repeating: "masterpiece best quality ", count: 4000),             // 100 kB, no colon
            String(repeating: "a-b/c d", count: 15000),                               // key characters only
            String(repeating: "<lora:", count: 16000),                                // tags that never close
            String(repeating: "k: \"\\\"", count: 20000),                             // quotes that never close
            "p\n" + (0..<5000).map { "Key \($0): \"v,\\\"\($0)\"" }.joined(separator: ", "),
        ]
        for text in cases {
            let started = Date()
            _ = ImageMetadata.parseA1111(text)
            _ = ImageMetadata.parameterPairs(text)
            let seconds = Date().timeIntervalSince(started)
            #expect(seconds < 2, "\(text.utf8.count) bytes took \(seconds) s")
        }
        let huge = String(repeating: "x", count: ImageMetadata.maxParametersBytes + 1)
        #expect(ImageMetadata.parseA1111(huge) == nil)
        #expect(ImageMetadata.parse([PNGText(key: "parameters", value: huge, kind: .text)]) == nil)
    }

    @Test("mutated metadata chunks (ours, A1111, ComfyUI, NovelAI, InvokeAI) parse or are ignored, never trap")
    func metadataChunks() {
        var rng = SeededRandom(seed: 17)
        var record = ImageRecord(parameters: GenerationParameters(prompt: "a fox", negativePrompt: "blur", seed: 7,
                                                                  loras: [.init(path: "/l/x.safetensors", weight: 0.5)]))
        record.precision = "fp32"
        let seeds: [PNGText] = ImageMetadata.texts(for: record) + [
            PNGText(key: "prompt", value: #"{"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "scheduler": "karras", "denoise": 1, "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0], "model": ["10", 0]}}, "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}}, "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}}, "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "bad", "clip": ["4", 1]}}, "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "ink.safetensors", "strength_model": 0.8, "model": ["4", 0]}}, "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "kolors.safetensors"}}}"#, kind: .text),
            PNGText(key: "workflow", value: #"{"nodes": [{"id": 3}, {"id": 4}], "links": []}"#, kind: .text),
            PNGText(key: "Software", value: "NovelAI", kind: .text),
            PNGText(key: "Comment", value: #"{"prompt": "x", "uc": "y", "steps": 28, "scale": 5.0, "seed": 1, "sampler": "k_euler"}"#, kind: .text),
            PNGText(key: "invokeai_metadata", value: #"{"positive_prompt": "p", "seed": 3, "model": {"name": "sdxl"}}"#, kind: .text),
        ]
        let tokens = ["{", "}", "[", "]", "\"", ":", ",", "1e999", "-1", "9223372036854775808", "null", "NaN", "\\u0000",
                      String(repeating: "[", count: 200), "\n", "<lora:", "Steps: ", "Negative prompt:"]
        for _ in 0..<1500 {
            var texts = seeds.filter { _ in Bool.random(using: &rng) }
            for i in texts.indices where Int.random(in: 0..<3, using: &rng) == 0 {
                var chars = Array(texts[i].value)
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    let at = chars.isEmpty ? 0 : Int.random(in: 0..<chars.count, using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0 where !chars.isEmpty: chars.remove(at: at)
                    case 1: chars.insert(contentsOf: tokens.randomElement(using: &rng)!, at: at)
                    default: if !chars.isEmpty { chars[at] = tokens.randomElement(using: &rng)!.first ?? "x" }
                    }
                }
                texts[i].value = String(chars)
            }
            _ = ImageMetadata.parse(texts)
            _ = ForeignMetadata.parse(texts)
        }
        // The unmutated ComfyUI graph gives the sampler's settings.
        let comfy = ForeignMetadata.parse(seeds).first { $0.tool == "ComfyUI" }
        let fields = Dictionary(comfy?.fields.map { ($0.key, $0.value) } ?? [], uniquingKeysWith: { a, _ in a })
        #expect(fields["seed"] == "5" && fields["steps"] == "20" && fields["cfg"] == "7.5" && fields["prompt"] == "a cat")
        #expect(fields["negative prompt"] == "bad" && fields["size"] == "1024x1024" && fields["model"] == "kolors.safetensors")
        #expect(fields["LoRAs"] == "ink.safetensors:0.8" && fields["workflow nodes"] == "2")
    }

    // MARK: - PNG files

    @Test("mutated PNGs with text chunks read or fail cleanly (600 files)")
    func pngFiles() throws {
        let dir = try TemporaryDirectory()
        var rng = SeededRandom(seed: 18)
        let base = PNGBytes.png(width: 5, height: 3, before: [PNGBytes.text("parameters", "cat\nSteps: 5, Seed: 1"),
                                                               PNGBytes.chunk("zTXt", Array("k".utf8) + [0, 0] + PNGBytes.zlibRepeated(0x62, count: 5000)),
                                                               PNGBytes.itxt("kolors", "{\"format\": \"x\"}")],
                                after: [PNGBytes.text("late", "after the pixels")])
        let path = dir.path + "/f.png"
        for n in 0..<600 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 8..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[at] ^= UInt8.random(in: 1...255, using: &rng)
                case 1: bytes[at] = [0x00, 0xFF, 0x7F, 0x80].randomElement(using: &rng)!
                case 2: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...40, using: &rng)))
                default: bytes.insert(contentsOf: [UInt8](repeating: 0xFF, count: 4), at: at)
                }
                if bytes.count <= 8 { break }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            if n % 2 == 0 {
                _ = try? PNGFile.read(path)
            } else {
                if let t = try? PNGFile.readText(path) { _ = ImageMetadata.parse(t.texts) }
            }
        }
        // The unmutated file reads whole: the text before and after the pixels.
        try Data(base).write(to: URL(fileURLWithPath: path))
        let read = try PNGFile.read(path)
        #expect(read.image.width == 5 && read.texts.map(\.key) == ["parameters", "k", "kolors", "late"])
        #expect(read.texts[1].value == String(repeating: "b", count: 5000))
        #expect(try PNGFile.read(path, texts: false).texts.isEmpty)
    }

    // MARK: - safetensors

    @Test("mutated safetensors headers are parsed or refused with CheckpointError (3000 headers)")
    func safetensorsHeaders() {
        var rng = SeededRandom(seed: 19)
        let header = #"{"__metadata__": {"format": "pt", "lora_adapter_metadata": "{\"unet.r\": 4}"}, "a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}, "b": {"dtype": "F32", "shape": [], "data_offsets": [12, 16]}, "c": {"dtype": "BF16", "shape": [0, 5], "data_offsets": [16, 16]}}"#
        let tokens = ["-1", "0", "18446744073709551616", "9223372036854775807", "4611686018427387904", "1e300", "[", "]",
                      "{", "}", ",", "\"", "\\", "null", "\"F64\"", "\"U8\"", "\"X\"", String(repeating: "[", count: 100)]
        for _ in 0..<3000 {
            var chars = Array(header)
            for _ in 0..<Int.random(in: 1...5, using: &rng) {
                let at = Int.random(in: 0..<chars.count, using: &rng)
                if Bool.random(using: &rng) {
                    chars.replaceSubrange(at..<min(chars.count, at + Int.random(in: 0...3, using: &rng)),
                                          with: Array(tokens.randomElement(using: &rng)!))
                } else {
                    chars.remove(at: at)
                }
                if chars.isEmpty { chars = ["{"] }
            }
            do {
                let parsed = try SafetensorsFile.parseHeader(Array(String(chars).utf8), path: "f", dataSize: 16)
                for t in parsed.tensors.values {
                    #expect(t.range.upperBound <= 16 && t.elementCount * t.dtype.size == t.range.count)
                }
            } catch is CheckpointError {
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    // MARK: - configs

    /// Values that break naive code: zero, negative, huge, fractional, wrong types, long lists.
    nonisolated(unsafe) static let hostileValues: [Any] = [0, -1, -4, 1, 3, 7, 1_000_000_000, Int.max, Int.min, 1 << 62, 1e300, -1e300, 0.5, 1.5,
                                       "x", NSNull(), [Int](), [1], [1, 2], [0, 0, 0], [8, 16, 24, 32], [Int](repeating: 16, count: 65),
                                       [-1, 2, 2], true]

    @Test("mutated configs decode, validate and build the tiny models, or throw (400 configs)")
    func configs() throws {
        var rng = SeededRandom(seed: 20)
        let m = try CheckpointCopy(of: Fixtures.tinyKolors)
        let model = try DiffusersModel(m.path)
        let unetArchive = try model.weights("unet"), vaeArchive = try model.weights("vae"), teArchive = try model.weights("text_encoder")
        let files = ["unet/config.json", "vae/config.json", "text_encoder/config.json", "scheduler/scheduler_config.json"]
        for n in 0..<400 {
            let file = files[n % files.count]
            let original = try JSONSerialization.jsonObject(with: try m.original(file)) as? [String: Any] ?? [:]
            var object = original
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let key = original.keys.sorted().randomElement(using: &rng)!
                object[key] = Self.hostileValues.randomElement(using: &rng)!
            }
            try m.replace(file, with: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
            switch file {
            case "unet/config.json":
                guard let c = try? model.config("unet", as: UNet2DConditionConfig.self) else { break }
                _ = try? UNet2DConditionModel(config: c, weights: WeightLoader(component: "unet", archive: unetArchive, residency: .mapped))
            case "vae/config.json":
                guard let c = try? model.config("vae", as: AutoencoderKLConfig.self) else { break }
                _ = try? AutoencoderKL(config: c, weights: WeightLoader(component: "vae", archive: vaeArchive, residency: .mapped,
                                                                       aliases: AutoencoderKLConfig.weightAliases))
            case "text_encoder/config.json":
                guard let c = try? model.config("text_encoder", as: ChatGLMConfig.self) else { break }
                _ = try? ChatGLMModel(config: c, weights: WeightLoader(component: "text_encoder", archive: teArchive, residency: .mapped,
                                                                      aliases: ChatGLMConfig.weightAliases))
            default:
                guard let c = try? SchedulerConfig(contentsOf: m.path + "/" + file) else { break }
                for kind in SchedulerKind.allCases {
                    guard let s = try? kind.make(config: c) else { continue }
                    try? s.setTimesteps(Int.random(in: 1...60, using: &rng))
                }
            }
            try m.replace(file, with: try m.original(file))
        }
    }
}
