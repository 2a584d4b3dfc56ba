import ArgumentParser
import Foundation
import KolorsEngine
import KolorsModels
import KolorsPipelines

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
                // Read and range-checked as generate reads it.
                let config = try SchedulerConfig(contentsOf: m.directory(of: "scheduler") + "/scheduler_config.json")
                let values: [(String, Any?)] = [
                    ("num_train_timesteps", config.numTrainTimesteps), ("beta_start", config.betaStart),
                    ("beta_end", config.betaEnd), ("beta_schedule", config.betaSchedule),
                    ("prediction_type", config.predictionType), ("timestep_spacing", config.timestepSpacing),
                    ("steps_offset", config.stepsOffset),
                ]
                print("  " + values.compactMap { k, v in v.map { "\(k)=\($0)" } }.joined(separator: ", "))
            case "text_encoder", "unet", "vae":
                switch c.name {  // decoded and range-checked as generate decodes them
                case "unet": _ = try m.config("unet", as: UNet2DConditionConfig.self)
                case "vae": _ = try m.config("vae", as: AutoencoderKLConfig.self)
                default: _ = try m.config("text_encoder", as: ChatGLMConfig.self)
                }
                let archive = try m.weights(c.name, variant: variant)
                print(describe(archive, component: c.name), terminator: "")
                if loadWeights { print(try validate(c.name, m, archive: archive), terminator: "") }
            default:
                print("  (not used by Kolors Studio)")
            }
        }
        let textEncoder = try m.config("text_encoder", as: ChatGLMConfig.self)
        try ChatGLMTokenizer.load(from: m).checkFits(textEncoder)
        try KolorsPipeline.checkComponentsFit(unet: try m.config("unet", as: UNet2DConditionConfig.self),
                                              vae: try m.config("vae", as: AutoencoderKLConfig.self), textEncoder: textEncoder)
        print("\ncompute  --precision \(PrecisionOption.auto.summary); \(EngineThreads.count) threads")
        if loadWeights {
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
        try checkValues(component, archive)
        if unused.isEmpty { return "  weights      every tensor matches the architecture\n" }
        let list = unused.prefix(5).joined(separator: ", ") + (unused.count > 5 ? ", …" : "")
        return "  weights      all required tensors match; \(unused.count) extra tensor(s) ignored: \(list)\n"
    }
}

/// Reads every stored value once: NaN or ±∞ anywhere, or fp16 values saturated at ±65504,
/// make the checkpoint unusable (every image would come out NaN). Pages are released after
/// each tensor, so this streams through the files without growing the resident size.
private func checkValues(_ component: String, _ archive: SafetensorsArchive) throws {
    for file in archive.files {
        for name in file.names {
            let t = try file.mapped(name)
            let (nonFinite, atLimit) = t.scanValues()
            t.releasePages()
            let where_ = "\(component): \((file.path as NSString).lastPathComponent) tensor '\(name)'"
            if nonFinite > 0 { throw CheckpointError("\(where_) holds \(nonFinite) NaN or infinite values") }
            if atLimit > 0 {
                throw CheckpointError("\(where_) holds \(atLimit) values at ±65504, the fp16 limit (saturated by an overflowing conversion)")
            }
        }
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
