import ArgumentParser
import Foundation
import KolorsEngine
import KolorsModels

/// `kolors info`: what a checkpoint folder holds and whether the engine can run it.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a Kolors checkpoint: components, parameters, dtypes, sizes, memory.",
        discussion: """
        Reads model_index.json, every component's config and every safetensors header (all \
        validated). With --load-weights it also maps every tensor and checks it against the \
        architecture the config implies. Exits 0 only when the checkpoint is usable.
        """
    )

    @Option(name: .long, help: "A Kolors-diffusers folder, a Hugging Face cache folder, or a repository id.")
    var model: String

    @Flag(name: .long, help: "Map every tensor and check it against the architecture.")
    var loadWeights = false

    @Option(name: .long, help: "Which weight files to read: fp16 (the variant, default) or full.")
    var variant: WeightVariant = .fp16

    func run() throws {
        let m = try DiffusersModel(model)
        print("\(m.root)\n\(m.pipelineClass)")
        for required in ["tokenizer", "text_encoder", "unet", "vae", "scheduler"] where m.component(required) == nil {
            throw CheckpointError("model_index.json has no '\(required)' component: not a Kolors pipeline")
        }
        for c in m.components {
            print("\n\(c.name)  (\(c.library).\(c.className))")
            switch c.name {
            case "tokenizer":
                let tok = try ChatGLMTokenizer.load(from: m)
                print("  vocabulary   \(tok.vocabSize) ids (\(tok.sentencePiece.vocabSize) SentencePiece pieces + specials)")
            case "scheduler":
                let path = m.directory(of: "scheduler") + "/scheduler_config.json"
                guard let data = FileManager.default.contents(atPath: path),
                      let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                    throw CheckpointError("scheduler: \(path) is missing or not JSON")
                }
                let keys = ["num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type", "timestep_spacing", "steps_offset"]
                print("  " + keys.compactMap { k in json[k].map { "\(k)=\($0)" } }.joined(separator: ", "))
            case "text_encoder", "unet", "vae":
                let archive = try m.weights(c.name, variant: variant)
                print(describe(archive, component: c.name), terminator: "")
                if loadWeights { print(try validate(c.name, m, archive: archive), terminator: "") }
            default:
                print("  (not used by Kolors Studio)")
            }
        }
        print("\ncompute  --precision \(PrecisionOption.auto.summary); \(EngineThreads.count) threads")
        if loadWeights {
            let tok = try ChatGLMTokenizer.load(from: m)
            let te = try m.config("text_encoder", as: ChatGLMConfig.self)
            guard tok.vocabSize <= te.paddedVocabSize else {
                throw CheckpointError("tokenizer has \(tok.vocabSize) ids but the text encoder embeds only \(te.paddedVocabSize)")
            }
            print("\nAll weights mapped and checked: the checkpoint is usable.")
        }
    }

    private func describe(_ archive: SafetensorsArchive, component: String) -> String {
        var params = 0, byDType: [DType: Int] = [:]
        for f in archive.files {
            for t in f.tensors.values {
                params += t.elementCount
                byDType[t.dtype, default: 0] += t.elementCount
            }
        }
        let files = archive.files.map { ($0.path as NSString).lastPathComponent }
        let dtypes = byDType.sorted { $0.value > $1.value }.map { "\($0.key.rawValue) \(percent($0.value, params))" }
        let mappedNote = component == "vae"
            ? "float32 copy at load: \(bytes(params * 4))"
            : "mapped in place (\(bytes(archive.dataBytes)) page cache), converted per block when used"
        return """
          files        \(files.joined(separator: ", "))
          parameters   \(formatCount(params))
          dtypes       \(dtypes.joined(separator: ", "))
          on disk      \(bytes(archive.fileBytes))
          memory       \(mappedNote)

        """
    }

    private func validate(_ component: String, _ m: DiffusersModel, archive: SafetensorsArchive) throws -> String {
        let unused: [String]
        switch component {
        case "unet":
            let loader = WeightLoader(component: "unet", archive: archive, residency: .mapped)
            unused = try UNet2DConditionModel(config: try m.config("unet", as: UNet2DConditionConfig.self), weights: loader).unusedWeights
        case "vae":
            let loader = WeightLoader(component: "vae", archive: archive, residency: .mapped, aliases: AutoencoderKLConfig.weightAliases)
            unused = try AutoencoderKL(config: try m.config("vae", as: AutoencoderKLConfig.self), weights: loader).unusedWeights
        default:
            let loader = WeightLoader(component: "text_encoder", archive: archive, residency: .mapped, aliases: ChatGLMConfig.weightAliases)
            unused = try ChatGLMModel(config: try m.config("text_encoder", as: ChatGLMConfig.self), weights: loader).unusedWeights
        }
        if unused.isEmpty { return "  weights      every tensor matches the architecture\n" }
        let list = unused.prefix(5).joined(separator: ", ") + (unused.count > 5 ? ", …" : "")
        return "  weights      all required tensors match; \(unused.count) extra tensor(s) ignored: \(list)\n"
    }
}

func bytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(n) B" : String(format: "%.2f %@", v, units[i])
}

func formatCount(_ n: Int) -> String {
    if n >= 1_000_000_000 { return String(format: "%.2f B", Double(n) / 1e9) + " (\(n))" }
    if n >= 1_000_000 { return String(format: "%.2f M", Double(n) / 1e6) + " (\(n))" }
    return "\(n)"
}

private func percent(_ a: Int, _ b: Int) -> String { b == 0 ? "0%" : String(format: "%.1f%%", 100 * Double(a) / Double(b)) }

extension WeightVariant: ExpressibleByArgument {}
