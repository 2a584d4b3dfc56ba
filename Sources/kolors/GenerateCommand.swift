import ArgumentParser
import Dispatch
import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsModels
import KolorsPipelines
import KolorsStudio

/// `kolors generate`: text-to-image or image-to-image on the command line.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate images with Kolors (txt2img, or img2img with --image).",
        discussion: """
        Gives the image diffusers' KolorsPipeline gives for the same settings and seed on the CPU \
        (torch's CPU generator is reproduced). Every PNG carries A1111-style `parameters` and a \
        complete JSON record of the settings. Ctrl-C stops after the current step and writes nothing.

        Output files are checked before anything loads: the folder must exist and be writable, \
        and an existing file is an error unless --overwrite is given. Limits: sizes up to \
        \(GenerationRequest.maxSide) pixels a side (--image and --ip-image too), at most \
        \(GenerationRequest.maxImages) images per run (prompts × --num-images), guidance \
        \(Int(GenerationRequest.guidanceRange.lowerBound))…\(Int(GenerationRequest.guidanceRange.upperBound)), \
        LoRA weights and --ip-scale \(Int(GenerationRequest.adapterScaleRange.lowerBound))…\(Int(GenerationRequest.adapterScaleRange.upperBound)), \
        --threads 1…\(EngineThreads.maximum).

        Examples:
          kolors generate --model ~/models/Kolors-diffusers --prompt "一只可爱的小猫, 4K" --seed 66
          kolors generate --model Kwai-Kolors/Kolors-diffusers --prompt "a lighthouse at dusk" \\
              --scheduler dpm++2m-karras --steps 25 --guidance 6.5 --width 1216 --height 832
          kolors generate --model ~/models/Kolors-diffusers --prompt "oil painting" --image in.png --strength 0.6
          kolors generate --model ~/models/Kolors-diffusers --prompt "a cat in this style" \\
              --ip-adapter ~/models/Kolors-IP-Adapter-Plus --ip-image ref.png --ip-scale 0.5
          kolors generate --model ~/models/Kolors-diffusers --prompt "a castle" --lora style.safetensors:0.8 --lora detail.safetensors
        """
    )

    @Option(name: .long, help: "A Kolors-diffusers folder, a Hugging Face cache folder, or a repository id.")
    var model: String

    @Option(name: .long, help: "The prompt; repeat for a batch of prompts.")
    var prompt: [String] = []

    @Option(name: .long, help: "Negative prompt: once for all prompts, or once per prompt (default: empty).")
    var negativePrompt: [String] = []

    @Option(name: .long, help: "Width in pixels, a multiple of 8 (default: the checkpoint's, 1024).")
    var width: Int?

    @Option(name: .long, help: "Height in pixels, a multiple of 8 (default: the checkpoint's, 1024).")
    var height: Int?

    @Option(name: .long, help: "Denoising steps.")
    var steps: Int = 50

    @Option(name: .long, help: "Classifier-free guidance scale (≤ 1 turns guidance off).")
    var guidance: Float = 5.0

    @Option(name: .long, help: "Seed for torch's CPU generator (default: random, printed and stored in the PNG).")
    var seed: UInt64?

    @Option(name: .long, help: "Scheduler: \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var scheduler: String = SchedulerKind.euler.rawValue

    @Option(name: .long, help: "Images per prompt (all prompts together: at most \(GenerationRequest.maxImages)).")
    var numImages: Int = 1

    @Option(name: .long, help: "img2img: the source PNG (output size follows it, rounded down to a multiple of 8).")
    var image: String?

    @Option(name: .long, help: "img2img: how much of the schedule is re-noised, 0…1.")
    var strength: Double = 0.3

    @Option(name: .long, help: "Output PNG (several images get -0, -1 … before the extension; default: kolors-<time>-<seed>.png here).")
    var output: String?

    @Flag(name: .long, help: "Replace existing output files; without it an existing --output (or --save-latents) file is an error, reported before anything loads.")
    var overwrite = false

    @Option(name: .long, help: "Also write the final latents of the batch (before VAE scaling) as float32 .npy.")
    var saveLatents: String?

    @Flag(name: .long, help: "Decode in overlapping 512-pixel tiles, blended as diffusers' vae.enable_tiling() does: bounded memory for large images.")
    var vaeTiling = false

    @Option(name: .long, help: "Weight files to read: fp16 (the variant, default) or full.")
    var variant: WeightVariant = .fp16

    @OptionGroup var engine: EngineOptions

    @Flag(name: .long, help: "Also print how the engine computes here (precision, why bf16 is off where it is, threads).")
    var verbose = false

    @Option(name: .long, help: "IP-Adapter-Plus: ip_adapter_plus_general.safetensors or the folder holding it (with --ip-image).")
    var ipAdapter: String?

    @Option(name: .long, help: "IP-Adapter: the CLIP image encoder folder (default: image_encoder/ beside the IP-Adapter weights).")
    var imageEncoder: String?

    @Option(name: .long, help: "IP-Adapter: the reference image (PNG).")
    var ipImage: String?

    @Option(name: .long, help: "IP-Adapter scale (0 turns the image prompt off).")
    var ipScale: Float = 1.0

    @Option(name: .long, help: "A LoRA .safetensors with an optional weight, FILE[:WEIGHT] (default 1); repeat for several.")
    var lora: [String] = []

    @Option(name: .long, help: "Step caching, an approximation for drafts: off (default), or deep:N (DeepCache: the whole UNet every N-th step, only its shallow path in between; N 2…10).")
    var cache: String = "off"

    @Flag(name: .long, help: "Also show each finished image in the terminal (kitty graphics, iTerm2 images, sixel or half blocks, detected like the studio; KOLORS_PREVIEW overrides).")
    var previewInTerminal = false

    /// A1111's prompt tags for LoRAs: `<lora:name:weight>` (name = file name without extension).
    static func loraTags(_ loras: [LoRAInput]) -> String {
        loras.map { "<lora:\(GenerationParameters.LoRASettings(path: $0.path).name):\(ImageMetadata.formatFloat($0.weight))>" }
            .joined(separator: " ")
    }

    func run() throws {
        guard !prompt.isEmpty else { throw GenerationError("give at least one --prompt") }
        let kind = try SchedulerKind(name: scheduler)
        guard steps > 0 else { throw GenerationError("--steps must be at least 1 (got \(steps))") }
        guard guidance.isFinite else { throw GenerationError("--guidance must be a number (got \(guidance))") }
        let maxImages = GenerationRequest.maxImages
        guard (1...maxImages).contains(numImages) else {
            throw GenerationError("--num-images must be between 1 and \(maxImages) (got \(numImages))")
        }
        let (total, overflow) = prompt.count.multipliedReportingOverflow(by: numImages)
        guard !overflow, total <= maxImages else {
            throw GenerationError("\(prompt.count) prompts × --num-images \(numImages) is more than the \(maxImages) images one run can make")
        }
        if let o = output, !o.lowercased().hasSuffix(".png") { throw GenerationError("--output must end in .png") }
        let seed = self.seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        // Where the results go is checked first: a missing or read-only folder, or a file in
        // the way, must not cost a whole generation.
        let paths = Self.outputPaths(output ?? Self.defaultOutput(seed: seed), count: total)
        try Self.checkOutputs(paths, flag: "--output", overwrite: overwrite)
        if let saveLatents { try Self.checkOutputs([saveLatents], flag: "--save-latents", overwrite: overwrite) }
        EngineThreads.configure(engine.threads)

        var request = GenerationRequest(prompts: prompt)
        request.negativePrompts = negativePrompt
        request.width = width
        request.height = height
        request.steps = steps
        request.guidance = guidance
        request.seed = seed
        request.scheduler = kind
        request.imagesPerPrompt = numImages
        request.strength = strength
        request.vaeTileLatent = vaeTiling ? 64 : nil
        // Input images are refused before their pixels are decoded when far over the size
        // limit (the pipeline then checks the exact sides); their text chunks are not read.
        let maxInputPixels = (GenerationRequest.maxSide + 7) * (GenerationRequest.maxSide + 7)
        if let image {
            do {
                request.initImage = try PNGFile.read(image, maxPixels: maxInputPixels, texts: false).image
            } catch {
                throw GenerationError("cannot read --image: \(error)")
            }
        }
        guard ipScale.isFinite else { throw GenerationError("--ip-scale must be a number (got \(ipScale))") }
        if let ipAdapter {
            guard let ipImage else { throw GenerationError("--ip-adapter needs a reference image: add --ip-image PNG") }
            let reference: RGBImage
            do {
                reference = try PNGFile.read(ipImage, maxPixels: maxInputPixels, texts: false).image
            } catch {
                throw GenerationError("cannot read --ip-image: \(error)")
            }
            request.ipAdapter = IPAdapterInput(weights: ipAdapter, imageEncoder: imageEncoder, image: reference, scale: ipScale)
        } else if ipImage != nil || imageEncoder != nil {
            throw GenerationError("--ip-image and --image-encoder need --ip-adapter")
        }
        request.loras = try lora.map {
            let spec = try LoRASpec.parse($0, weightRange: GenerationRequest.adapterScaleRange)
            return LoRAInput(path: spec.path, weight: spec.weight ?? 1)
        }
        request.deepCacheInterval = try GenerationRequest.parseStepCache(cache)
        for l in request.loras where !FileManager.default.fileExists(atPath: l.path) {
            throw GenerationError("--lora \(l.path): no such file")
        }

        if let warning = engine.precision.warning { FileHandle.standardError.write(Data("kolors: warning: \(warning)\n".utf8)) }
        if verbose {
            FileHandle.standardError.write(Data("kolors: compute --precision \(engine.precision.summary); \(EngineThreads.count) threads\n".utf8))
        }
        let pipeline = try KolorsPipeline(model: try DiffusersModel(model), variant: variant,
                                          textEncoderPrecision: engine.textEncoderPrecision, backend: engine.precision.resolved.backend)
        try pipeline.validate(request)
        let outW = request.initImage.map { $0.width - $0.width % 8 } ?? request.width ?? pipeline.defaultSize
        let outH = request.initImage.map { $0.height - $0.height % 8 } ?? request.height ?? pipeline.defaultSize
        var extras = ""
        if request.ipAdapter != nil { extras += ", IP-Adapter scale \(ImageMetadata.formatFloat(ipScale))" }
        if !request.loras.isEmpty { extras += ", " + Self.loraTags(request.loras) }
        FileHandle.standardError.write(Data("kolors: \(outW)×\(outH), \(steps) steps \(kind.rawValue), guidance \(guidance), seed \(request.seed)\(extras) → \(paths.count == 1 ? paths[0] : "\(paths[0]) …")\n".utf8))
        for (path, count) in pipeline.ignoredLoRAKeys(request.loras).sorted(by: { $0.key < $1.key }) {
            FileHandle.standardError.write(Data("kolors: warning: \((path as NSString).lastPathComponent): \(count) text-encoder LoRA keys are not applied (only the UNet's)\n".utf8))
        }

        let cancel = CancellationToken()
        let interrupt = InterruptHandler { cancel.cancel() }
        defer { interrupt.restore() }
        let progress = ProgressLine()
        let started = Date()
        let result: GenerationResult
        do {
            let run = try pipeline.prepare(request, cancel: cancel) { progress.loading($0) }
            progress.prompts(cached: !run.textEncoderRan)
            while let step = try run.next() { progress.step(step.index, of: step.total) }
            result = try run.result(loading: { progress.loading($0) }, decoding: { progress.decoding() })
        } catch is CancellationError {
            progress.finish()
            FileHandle.standardError.write(Data("kolors: cancelled\(progress.lastStep.map { " after step \($0)" } ?? ""); no image written\n".utf8))
            throw ExitCode(130)
        }
        progress.finish()
        for warning in result.warnings { FileHandle.standardError.write(Data("kolors: warning: \(warning)\n".utf8)) }

        // Finished work is never dropped: a file that cannot be written where asked (its folder
        // vanished, a file appeared there meanwhile) goes to the temporary folder instead, and
        // the run still ends with an error that says where.
        var rescued: [String] = []
        func save(_ path: String, _ write: (String) throws -> Void) {
            do {
                try write(path)
                return
            } catch {
                let fallback = (NSTemporaryDirectory() as NSString).appendingPathComponent(
                    "kolors-rescued-\(getpid())-\((path as NSString).lastPathComponent)")
                if (try? write(fallback)) != nil {
                    FileHandle.standardError.write(Data("kolors: warning: cannot write \(path) (\(error)); saved as \(fallback)\n".utf8))
                    rescued.append(fallback)
                } else {
                    FileHandle.standardError.write(Data("kolors: warning: cannot write \(path) (\(error))\n".utf8))
                    rescued.append("(lost) " + path)
                }
            }
        }
        if let saveLatents { save(saveLatents) { try NumpyFile.write(result.latents, to: $0, overwrite: overwrite) } }
        let loraHashes = request.loras.map { try? SafetensorsFile.shortHash(path: $0.path) }
        let modelName = Self.displayName(of: pipeline.model.root)
        let seconds = Date().timeIntervalSince(started)
        for (i, img) in result.images.enumerated() {
            let ip = ipAdapter.flatMap { a in
                ipImage.map { GenerationParameters.IPAdapterSettings(path: a, image: $0, scale: ipScale, imageEncoder: imageEncoder) }
            }
            let params = GenerationParameters(request: request, image: i, width: img.width, height: img.height, model: modelName,
                                              initImage: image, ipAdapter: ip, loraHashes: loraHashes)
            var record = ImageRecord(parameters: params, batchIndex: i % numImages,
                                     created: ISO8601DateFormatter().string(from: Date()), seconds: seconds)
            record.precision = engine.precision.resolved.rawValue
            save(paths[i]) { path in
                try PNGFile.write(img, to: path, texts: ImageMetadata.texts(for: record), overwrite: overwrite)
                if previewInTerminal { showInTerminal(img) }
                print(path)
            }
        }
        if !rescued.isEmpty {
            throw GenerationError("\(rescued.count) file(s) could not be written where asked: \(rescued.joined(separator: ", "))")
        }
    }

    /// The image below the cursor, on standard output when it is a terminal, else on standard error.
    func showInTerminal(_ img: RGBImage) {
        fflush(nil)
        if InlineImage.show(img, outFD: 1) == nil { InlineImage.show(img, outFD: 2) }
    }

    static func defaultOutput(seed: UInt64) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return "kolors-\(f.string(from: Date()))-\(seed).png"
    }

    /// Checks, before anything loads, that each path can be written: its folder exists, is a
    /// folder and takes a new file (probed by creating and removing a temporary file, which
    /// also catches read-only mounts), and no file is in the way unless `overwrite`.
    static func checkOutputs(_ paths: [String], flag: String, overwrite: Bool) throws {
        var probed: Set<String> = []
        for path in paths {
            let slash = path.lastIndex(of: "/")
            let dir = slash.map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? "."
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
                throw GenerationError("\(flag) \(path): the folder \(dir) does not exist")
            }
            guard isDir.boolValue else { throw GenerationError("\(flag) \(path): \(dir) is not a folder") }
            if probed.insert(dir).inserted {
                do {
                    TemporaryFiles.discard(try TemporaryFiles.create(for: path))
                } catch let e as PNGError {
                    throw GenerationError("\(flag) \(path): cannot write in \(dir): \(e.message)")
                }
            }
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                if isDir.boolValue { throw GenerationError("\(flag) \(path) is a folder") }
                if !overwrite { throw GenerationError("\(flag) \(path) already exists; add --overwrite to replace it") }
            }
        }
    }

    /// `out.png` for one image; `out-0.png`, `out-1.png` … for several.
    static func outputPaths(_ path: String, count: Int) -> [String] {
        guard count > 1 else { return [path] }
        let ext = (path as NSString).pathExtension
        let stem = (path as NSString).deletingPathExtension
        return (0..<count).map { "\(stem)-\($0).\(ext)" }
    }

    /// "Kolors-diffusers" for a folder or an HF cache snapshot of Kwai-Kolors/Kolors-diffusers.
    static func displayName(of root: String) -> String {
        if let cache = root.split(separator: "/").last(where: { $0.hasPrefix("models--") }) {
            return cache.components(separatedBy: "--").last ?? String(cache)
        }
        return (root as NSString).lastPathComponent
    }
}

/// A one-line progress bar on stderr: step i/N, s/it, ETA.
final class ProgressLine: @unchecked Sendable {
    private let tty = isatty(2) == 1
    private(set) var lastStep: Int?
    private var drawn = false

    private var clock = StepClock()

    func loading(_ what: String) { write("loading \(what)…", final: !tty) }

    func prompts(cached: Bool) {
        write(cached ? "prompt embeddings from cache" : "prompts encoded", final: !tty)
        clock = StepClock()
    }

    func step(_ step: Int, of total: Int) {
        lastStep = step
        let (spi, eta) = clock.tick(remaining: total - step)
        let width = 24
        let filled = width * step / max(total, 1)
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        write(String(format: "step %d/%d [%@] %.2f s/it, ETA %@", step, total, bar, spi, Self.clock(eta)), final: !tty)
    }

    func decoding() { write("decoding…", final: !tty) }

    func finish() {
        if drawn && tty { FileHandle.standardError.write(Data("\n".utf8)) }
        drawn = false
    }

    private func write(_ text: String, final: Bool) {
        let line = tty ? "\r\u{1B}[2K" + text : text + "\n"
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 1e9 else { return "?" }
        let s = Int(max(0, seconds).rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// First Ctrl-C (or SIGTERM) calls `onInterrupt`; a second one exits at once.
final class InterruptHandler: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    init(onInterrupt: @escaping @Sendable () -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            var count = 0
            source.setEventHandler {
                count += 1
                if count == 1 {
                    FileHandle.standardError.write(Data("\nkolors: stopping after the current step (Ctrl-C again to quit now)\n".utf8))
                    onInterrupt()
                } else {
                    // Quit now, but leave no half-written `.NAME.png.tmp-*` behind.
                    TemporaryFiles.removeAllAndExit(130)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func restore() {
        sources.forEach { $0.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

/// Writes float32 tensors as NumPy `.npy` files (format 1.0), atomically.
enum NumpyFile {
    static func write(_ t: Tensor, to path: String, overwrite: Bool = true) throws {
        let shape = t.shape.map(String.init).joined(separator: ", ") + (t.rank == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let len = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(len & 0xFF), UInt8(len >> 8)])
        data.append(Data(header.utf8))
        data.append(Data(bytes: t.pointer, count: t.count * 4))
        try TemporaryFiles.write([UInt8](data), to: path, overwrite: overwrite)
    }
}

extension TextEncoderPrecision: ExpressibleByArgument {}

/// `--precision`: auto (bf16 where the CPU multiplies bf16 natively, else fp32), fp32 or bf16.
enum PrecisionOption: String, ExpressibleByArgument, CaseIterable, Sendable {
    case auto, fp32, bf16
    var resolved: ComputePrecision { self == .auto ? .automatic : ComputePrecision(rawValue: rawValue)! }
}
