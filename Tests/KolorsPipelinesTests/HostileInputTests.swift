import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsModels
import KolorsPipelines
import Testing
import KolorsTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 15 at library level: the checks `kolors` and the studio share, each given the value
/// that used to trap, hang or allocate gigabytes. The CLI cases are in Tests/CLITests.
@Suite("hostile inputs: library")
struct HostileLibraryTests {
    // MARK: - NaN-safe conversions (defect 1)

    @Test("postprocess writes NaN as 0 and clamps ±∞ instead of trapping, and counts them")
    func postprocessNaN() {
        let decoded = Tensor(shape: [1, 3, 1, 4], values: [.nan, .infinity, -.infinity, 0.5, 0, 0, 0, 0, 1, 1, 1, 1])
        let (pixels, images, nonFinite) = ImageConversion.postprocess(decoded)
        #expect(nonFinite == 3)
        #expect(images[0].pixels[0] == 0 && images[0].pixels[3] == 255 && images[0].pixels[6] == 0)
        #expect(pixels.values.allSatisfy { $0.isFinite })
    }

    @Test("latent previews of NaN latents are black, not a trap")
    func previewNaN() {
        let latent: [Float] = [.nan, 1, .infinity, -.infinity] + [Float](repeating: .nan, count: 12)
        let image = LatentPreview.rgb(latent: latent, height: 2, width: 2)
        #expect(Array(image.pixels[0..<3]) == [0, 0, 0])
        #expect(image.pixels.count == 12)
    }

    // MARK: - numbers from files

    @Test("Int(whole:in:) refuses NaN, ±∞, fractions and out-of-range values without trapping")
    func wholeNumbers() {
        #expect(Int(whole: 4, in: 1...8) == 4)
        #expect(Int(whole: -0.0, in: 0...8) == 0)
        for bad in [Double.nan, .infinity, -.infinity, 1e300, -1e300, 3.5, 9.0, 0, 9_223_372_036_854_775_807.0] {
            #expect(Int(whole: bad, in: 1...8) == nil, "\(bad)")
        }
        #expect(Int(whole: 9_223_372_036_854_775_807.0, in: 0...Int.max) == nil, "2^63 does not fit an Int")
    }

    @Test("RegularFile refuses FIFOs, folders and oversized files without blocking")
    func regularFiles() throws {
        let dir = try TemporaryDirectory()
        let fifo = dir.path + "/fifo.json"
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect(throws: RegularFileError.self) { try RegularFile.read(fifo) }
        #expect(throws: RegularFileError.self) { try RegularFile.read(dir.path) }
        try Data(count: 100).write(to: URL(fileURLWithPath: dir.path + "/big"))
        #expect(throws: RegularFileError.self) { try RegularFile.read(dir.path + "/big", maxBytes: 99) }
        #expect(try RegularFile.read(dir.path + "/big", maxBytes: 100).count == 100)
        do {
            _ = try RegularFile.read(dir.path + "/none")
            Issue.record("a missing file was read")
        } catch let e as RegularFileError {
            #expect(e.missing)
        }
    }

    // MARK: - configs (defects 3, 4, 5)

    static func decodeUNet(_ edit: (inout [String: Any]) -> Void) throws -> UNet2DConditionConfig {
        let m = try CheckpointCopy(of: Fixtures.tinyKolors)
        try m.editJSON("unet/config.json", edit)
        return try DiffusersModel(m.path).config("unet", as: UNet2DConditionConfig.self)
    }

    @Test("a negative norm_num_groups is refused (it used to leave part of every GroupNorm output unwritten)")
    func negativeGroups() throws {
        #expect(throws: CheckpointError.self) { _ = try Self.decodeUNet { $0["norm_num_groups"] = -4 } }
        // The layer refuses such a group count too, whoever builds it.
        let loader = WeightLoader(component: "unet", archive: try DiffusersModel(Fixtures.tinyKolors).weights("unet"), residency: .mapped)
        #expect(throws: CheckpointError.self) {
            _ = try GroupNorm(loader.scope("conv_norm_out"), groups: -4, channels: 8, eps: 1e-5)
        }
        #expect(throws: CheckpointError.self) {
            _ = try GroupNorm(loader.scope("conv_norm_out"), groups: 3, channels: 8, eps: 1e-5)
        }
    }

    @Test("the tiny checkpoint's own configs pass every range check")
    func realConfigsPass() throws {
        let m = try DiffusersModel(Fixtures.tinyKolors)
        _ = try m.config("unet", as: UNet2DConditionConfig.self)
        _ = try m.config("vae", as: AutoencoderKLConfig.self)
        _ = try m.config("text_encoder", as: ChatGLMConfig.self)
        _ = try SchedulerConfig(contentsOf: Fixtures.tinyKolors + "/scheduler/scheduler_config.json")
        _ = try ConfigFile.decode(CLIPVisionConfig.self, path: Fixtures.path("ip-adapter-plus/image_encoder/config.json"),
                                  component: "image_encoder")
    }

    @Test("scheduler configs: betas outside (0, 1) or out of order, huge counts and offsets are refused", arguments: [
        (#"{"beta_start": 0}"#, "beta_start"),
        (#"{"beta_end": 1}"#, "beta_end"),
        (#"{"beta_start": 0.5, "beta_end": 0.1}"#, "larger than beta_end"),
        (#"{"num_train_timesteps": 1000000000}"#, "num_train_timesteps"),
        (#"{"steps_offset": 9223372036854775807}"#, "steps_offset"),
        (#"{"steps_offset": -1}"#, "steps_offset"),
        (#"{"solver_order": 25}"#, "solver_order"),
        (#"{"sigma_min": 0}"#, "sigma_min"),
        (#"{"sigma_min": 5, "sigma_max": 1}"#, "sigma_min"),
        (#"{"clip_sample_range": -Infinity}"#, "clip_sample_range"),
    ])
    func schedulerRanges(json: String, key: String) {
        do {
            _ = try SchedulerConfig(json: Data(json.utf8))
            Issue.record("accepted \(json)")
        } catch let e as SchedulerError {
            #expect(e.message.hasPrefix("scheduler_config.json:") && e.message.contains(key), "\(e.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("overrides assigned after reading are checked when the schedule is built")
    func schedulerOverrides() {
        var config = SchedulerConfig()
        config.stepsOffset = Int.max
        #expect(throws: SchedulerError.self) { _ = try EulerDiscreteScheduler(config: config) }
        config = SchedulerConfig()
        config.solverOrder = 30  // UniPC's coefficients multiply factorials: 21! overflows
        #expect(throws: SchedulerError.self) { _ = try UniPCMultistepScheduler(config: config) }
    }

    // MARK: - pipeline limits (defects 1, 5, 7, 8, 11)

    @Test("requests beyond the limits are refused by validate, with one line each")
    func requestLimits() throws {
        let pipeline = try KolorsPipeline(model: try DiffusersModel(Fixtures.tinyKolors))
        func refused(_ edit: (inout GenerationRequest) -> Void, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
            var r = GenerationRequest(prompt: "x")
            edit(&r)
            do {
                try pipeline.validate(r)
                Issue.record("accepted", sourceLocation: sourceLocation)
            } catch let e as GenerationError {
                #expect(e.message.contains(message) && !e.message.contains("\n"), "\(e.message)", sourceLocation: sourceLocation)
            } catch {
                Issue.record("\(error)", sourceLocation: sourceLocation)
            }
        }
        refused({ $0.guidance = 1e38 }, "guidance must be between")
        refused({ $0.guidance = -5 }, "guidance must be between")
        refused({ $0.imagesPerPrompt = 1_000_000 }, "more than the 64 images")
        refused({ $0.prompts = ["a", "b"]; $0.imagesPerPrompt = Int.max }, "more than the 64 images")
        refused({ $0.loras = [LoRAInput(path: "x", weight: 1e38)] }, "weight must be between")
        refused({ $0.loraScale = .infinity }, "LoRA scale must be a finite number")
        refused({ $0.ipAdapter = IPAdapterInput(weights: "x", image: RGBImage(width: 8, height: 8), scale: 1e38) }, "IP-Adapter scale")
        refused({ $0.ipAdapter = IPAdapterInput(weights: "x", image: RGBImage(width: 16384, height: 8)) }, "at most 4096×4096")
        refused({ $0.initImage = RGBImage(width: 100_000, height: 8) }, "the input image is 100000×8")
        refused({ $0.initImage = RGBImage(width: 7, height: 64) }, "at least 8×8")
        var ok = GenerationRequest(prompt: "x")
        ok.initImage = RGBImage(width: 4103, height: 16)  // rounds down to 4096
        try pipeline.validate(ok)
    }

    @Test("a tokenizer with ids beyond the text encoder's embedding table is refused when the pipeline opens")
    func tokenizerFits() throws {
        let m = try CheckpointCopy(of: Fixtures.tinyKolors)
        try m.editJSON("text_encoder/config.json") { $0["padded_vocab_size"] = 100 }
        do {
            _ = try KolorsPipeline(model: try DiffusersModel(m.path))
            Issue.record("opened")
        } catch let e as CheckpointError {
            #expect(e.message.contains("tokenizer has") && e.message.contains("padded_vocab_size"), "\(e.message)")
        }
    }

    // MARK: - LoRA and IP-Adapter (defects 9, 10)

    @Test("PEFT alpha_pattern keys match literally: a regex bomb of a key costs nothing and matches nothing")
    func alphaPatternLiteral() throws {
        let dir = try TemporaryDirectory()
        let module = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
        let other = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k"
        let bomb = "(d|o|w|n|_|b|l|c|k|s|[.]|[0-9]|a|t|e|i|r|f|m|q)*(.*)*(.*)*(.*)*!"
        let metadata = #"{"unet.r": 4, "unet.lora_alpha": 8, "unet.alpha_pattern": {"\#(bomb)": 1, "attn1.to_q": 2}}"#
        let path = dir.path + "/p.safetensors"
        try SafetensorsWriter.write([("unet.\(module).lora_A.weight", Tensor.full([4, 16], 0.01), .f32),
                                     ("unet.\(module).lora_B.weight", Tensor.full([16, 4], 0.01), .f32),
                                     ("unet.\(other).lora_A.weight", Tensor.full([4, 32], 0.01), .f32),
                                     ("unet.\(other).lora_B.weight", Tensor.full([16, 4], 0.01), .f32)],
                                    metadata: ["lora_adapter_metadata": metadata], to: path)
        let started = Date()
        let lora = try LoRAFile(path: path)
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(lora.modules.first { $0.path == module }?.alpha == 2, "the dotted suffix key matches")
        #expect(lora.modules.first { $0.path == other }?.alpha == 8, "no key matches: lora_alpha")
    }

    @Test("IP-Adapter files with rank-1 or rank-0 resampler projections are refused, not indexed past")
    func ipAdapterShapes() throws {
        let dir = try TemporaryDirectory()
        func write(_ projIn: [Int], _ projOut: [Int]) throws -> String {
            let path = dir.path + "/ip-\(projIn.count)-\(projOut.count).safetensors"
            try SafetensorsWriter.write([
                ("image_proj.latents", Tensor.full([1, 4, 64], 0), .f32),
                ("image_proj.proj_in.weight", Tensor.full(projIn, 0), .f32),
                ("image_proj.proj_out.weight", Tensor.full(projOut, 0), .f32),
                ("image_proj.layers.0.0.to_q.weight", Tensor.full([64, 64], 0), .f32),
                ("ip_adapter.1.to_k_ip.weight", Tensor.full([16, 32], 0), .f32),
            ], to: path)
            return path
        }
        for (projIn, projOut, tensor) in [([64], [32, 64], "proj_in.weight"), ([64, 32], [], "proj_out.weight")] {
            do {
                _ = try IPAdapterWeights.load(try write(projIn, projOut))
                Issue.record("loaded")
            } catch let e as CheckpointError {
                #expect(e.message.contains(tensor), "\(e.message)")
            }
        }
    }

    // MARK: - temporary files (defect 12)

    @Test("atomic writes: no temporary file survives; without overwrite an existing file is kept")
    func temporaryFiles() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/a.png"
        try PNGFile.write(RGBImage(width: 2, height: 2), to: path, overwrite: false)
        #expect(throws: PNGError.self) { try PNGFile.write(RGBImage(width: 3, height: 3), to: path, overwrite: false) }
        #expect(try PNGFile.read(path).image.width == 2, "the first image is kept")
        try PNGFile.write(RGBImage(width: 3, height: 3), to: path)
        #expect(try PNGFile.read(path).image.width == 3)
        let temp = try TemporaryFiles.create(for: dir.path + "/b.npy")
        #expect(FileManager.default.fileExists(atPath: temp))
        TemporaryFiles.discard(temp)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["a.png"])
        #expect(throws: PNGError.self) { _ = try TemporaryFiles.create(for: dir.path + "/missing/c.png") }
    }
}
