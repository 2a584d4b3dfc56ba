import ArgumentParser
import Foundation
import KolorsEngine
import KolorsModels
import KolorsPipelines
import KolorsStudio
import KolorsStudioCore
import KolorsTerminal

extension PreviewMode: ExpressibleByArgument {}

struct StudioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "studio",
        abstract: "The terminal studio: edit prompts and parameters, watch live previews, browse the gallery.",
        discussion: """
        Keys: Ctrl-G generate · Esc cancel · Tab/Shift-Tab fields · Ctrl-F full-screen preview · Ctrl-O gallery · \
        Ctrl-N messages · F1 help (every key) · Ctrl-Q quit.
        Images are saved with their parameters into the session folder (default: \
        $XDG_DATA_HOME/kolors-studio/sessions/<time>, or ~/.local/share/kolors-studio/sessions/<time>).
        The preview uses the terminal's graphics: the kitty protocol (kitty, Ghostty, Konsole), iTerm2 \
        inline images (iTerm2, WezTerm, VS Code) or sixel (xterm -ti vt340, foot, mlterm …), also inside \
        tmux (allow-passthrough on), else Unicode half blocks; KOLORS_PREVIEW=kitty|iterm|sixel|blocks|none \
        overrides the detection (the --preview flag wins over it).

        IP-Adapter and LoRAs: --ip-adapter turns on the Reference image field (a PNG path, with a \
        thumbnail) and its IP scale; --lora preloads the LoRA list, whose entries the studio edits \
        (a add, d remove, ←/→ weight). Reloaded parameters name LoRAs by <lora:name:weight>; they are \
        looked up in the folders of the listed LoRAs and in every --lora-dir.

        Examples:
          kolors studio --model ~/models/Kolors-diffusers --ip-adapter ~/models/Kolors-IP-Adapter-Plus
          kolors studio --lora ~/loras/style.safetensors:0.8 --lora ~/loras/detail.safetensors --lora-dir ~/loras
        """
    )

    @Option(help: "Kolors model: a diffusers folder, a Hugging Face cache folder or a repo id (default: the demo checkpoint or Kolors from the HF cache).")
    var model: String?

    @Option(help: "Session folder for this run's images (reopening one restores its history).")
    var session: String?

    @Option(help: "Preview drawing: auto, kitty, iterm, sixel, blocks or none.")
    var preview: PreviewMode = .auto

    @Option(help: "Colour theme: dark, light, high-contrast, or a path to a .theme file (F2 switches).")
    var theme: String?

    @OptionGroup var engine: EngineOptions

    @Option(help: ArgumentHelp("IP-Adapter-Plus for this session: ip_adapter_plus_general.safetensors or the folder holding it "
                               + "(turns on the Reference image and IP scale fields).", valueName: "path"))
    var ipAdapter: String?

    @Option(help: ArgumentHelp("IP-Adapter: the CLIP image encoder folder (default: image_encoder/ beside the IP-Adapter weights).",
                               valueName: "dir"))
    var imageEncoder: String?

    @Option(help: ArgumentHelp("Preload a LoRA, FILE[:WEIGHT] (weight −2…2, default 1); repeat for several.", valueName: "file[:weight]"))
    var lora: [String] = []

    @Option(help: ArgumentHelp("A folder of LoRAs: reloaded parameters' <lora:name:weight> tags are looked up there; repeatable.",
                               valueName: "dir"))
    var loraDir: [String] = []

    func validate() throws {
        _ = try adapterOptions()
    }

    /// The adapter flags checked and made absolute.
    func adapterOptions(cwd: String = FileManager.default.currentDirectoryPath) throws -> AdapterOptions {
        let fm = FileManager.default
        func absolute(_ p: String) -> String { resolveStudioPath(p, cwd: cwd) }
        func isDir(_ p: String) -> Bool? {
            var d: ObjCBool = false
            return fm.fileExists(atPath: p, isDirectory: &d) ? d.boolValue : nil
        }
        var options = AdapterOptions(workingDirectory: cwd)
        if let ipAdapter {
            let path = absolute(ipAdapter)
            switch isDir(path) {
            case nil: throw ValidationError("--ip-adapter \(ipAdapter): no such file or folder")
            case true?:
                let weights = (path as NSString).appendingPathComponent("ip_adapter_plus_general.safetensors")
                guard fm.fileExists(atPath: weights) else {
                    throw ValidationError("--ip-adapter \(ipAdapter): the folder has no ip_adapter_plus_general.safetensors")
                }
            case false?: break
            }
            var encoder: String?
            if let imageEncoder {
                encoder = absolute(imageEncoder)
                guard isDir(encoder!) == true else { throw ValidationError("--image-encoder \(imageEncoder): no such folder") }
            }
            options.ipAdapter = IPAdapterConfig(path: path, imageEncoder: encoder)
        } else if imageEncoder != nil {
            throw ValidationError("--image-encoder needs --ip-adapter")
        }
        for spec in lora {
            let parsed: LoRASpec
            do {
                parsed = try LoRASpec.parse(spec, weightRange: ParameterRules.loraWeightRange)
            } catch {
                throw ValidationError("--lora: \(error)")
            }
            let path = absolute(parsed.path)
            guard isDir(path) == false else { throw ValidationError("--lora \(parsed.path): no such file") }
            options.loras.append(GenerationParameters.LoRASettings(path: path, weight: parsed.weight ?? 1))
        }
        for dir in loraDir {
            let path = absolute(dir)
            guard isDir(path) == true else { throw ValidationError("--lora-dir \(dir): no such folder") }
            options.loraDirs.append(path)
        }
        return options
    }

    func run() throws {
        let options = StudioOptions(model: model, session: session, preview: preview, theme: theme, threads: engine.threads,
                                    adapters: try adapterOptions())
        let factory: GeneratorFactory
        if let spec = ProcessInfo.processInfo.environment["KOLORS_STUDIO_TEST_GENERATOR"] {
            // Tests only: a labelled test-pattern generator (not a model) with `delay` seconds per step.
            let delay = Double(spec.split(separator: ":").dropFirst().first ?? "") ?? 0.05
            factory = { _, _ in TestPatternGenerator(stepDelay: delay) }
        } else {
            let (precision, compute, label) = (engine.textEncoderPrecision, engine.precision.resolved, engine.precision.summary)
            factory = { request, progress in
                try makeStudioGenerator(request, textEncoderPrecision: precision, precision: compute, precisionLabel: label,
                                        progress: progress)
            }
        }
        let code: Int32
        do {
            code = try runStudio(options: options, makeGenerator: factory)
        } catch let e as TerminalError {
            FileHandle.standardError.write(Data("kolors studio: \(e.message)\n".utf8))
            throw ExitCode(2)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
