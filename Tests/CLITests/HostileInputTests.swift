import Foundation
import KolorsEngine
import KolorsImageIO
import Testing
import KolorsTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 15: mutated checkpoints, configs, PNGs, LoRAs and CLI values given to the real
/// binary. Every case must end in a one-line error naming the file or field and a non-zero
/// exit (or the clean result named), never a trap, a hang or a huge allocation.
@Suite("hostile inputs: kolors", .enabled(if: CLI.available))
struct HostileInputTests {
    /// The peak memory any hostile case may use (a normal tiny-model run stays far below).
    static let memoryLimit = 512 << 20

    /// Runs and checks the common contract: no signal, no hang, bounded memory, exit status 1,
    /// and the error as one line (the last on stderr) containing every `mentioning` string.
    /// Unless `afterLoading` (the run got as far as loading components and printed its progress
    /// lines first), that line is all of stderr.
    @discardableResult
    static func expectRefused(_ arguments: [String], mentioning: [String], afterLoading: Bool = false, timeout: Double = 60,
                              sourceLocation: SourceLocation = #_sourceLocation) throws -> CLI.Outcome {
        let r = try CLI.runMeasured(arguments, timeout: timeout)
        #expect(r.signal == nil && !r.timedOut, "crashed or hung: \(r)", sourceLocation: sourceLocation)
        #expect(r.maxRSS < memoryLimit, "used \(r.maxRSS >> 20) MiB: \(r)", sourceLocation: sourceLocation)
        #expect(r.status == 1, "\(r)", sourceLocation: sourceLocation)
        let lines = r.message.split(separator: "\n").map(String.init)
        let error = lines.last ?? ""
        #expect(error.hasPrefix("Error: ") || error.hasPrefix("kolors: "), "not an error line: \(r.message)", sourceLocation: sourceLocation)
        if afterLoading {
            #expect(!lines.dropLast().contains { $0.contains("Error") }, "more than one error line: \(r.message)", sourceLocation: sourceLocation)
        } else {
            #expect(lines.count == 1, "not one line: \(r.message)", sourceLocation: sourceLocation)
        }
        for m in mentioning {
            #expect(error.contains(m), "'\(error)' should mention '\(m)'", sourceLocation: sourceLocation)
        }
        return r
    }

    static func generate(_ model: String, _ extra: [String], output: String) -> [String] {
        ["generate", "--model", model, "--prompt", "x", "--steps", "1", "--width", "64", "--height", "64",
         "--seed", "1", "--output", output] + extra
    }

    // MARK: - configs (defects 3, 4, 5)

    /// (file, key, value as JSON text); the message must name the file and the key.
    static let configCases: [(String, String, String)] = [
        ("unet", "attention_head_dim", "0"),
        ("unet", "attention_head_dim", "[1, 2]"),
        ("unet", "num_attention_heads", "0"),
        ("unet", "norm_num_groups", "0"),
        ("unet", "norm_num_groups", "-4"),
        ("unet", "layers_per_block", "-1"),
        ("unet", "layers_per_block", "1000000000"),
        ("unet", "block_out_channels", "[]"),
        ("unet", "block_out_channels", "[4611686018427387904, 4611686018427387904, 4611686018427387904]"),
        ("unet", "block_out_channels", "[-8, 16, 24]"),
        ("unet", "transformer_layers_per_block", "[1]"),
        ("unet", "reverse_transformer_layers_per_block", "[1]"),
        ("unet", "sample_size", "100000"),
        ("unet", "sample_size", "4611686018427387904"),
        ("unet", "in_channels", "-4"),
        ("unet", "cross_attention_dim", "0"),
        ("unet", "norm_eps", "-1"),
        ("unet", "conv_in_kernel", "0"),
        ("unet", "addition_time_embed_dim", "0"),
        ("unet", "downsample_padding", "2"),
        ("vae", "block_out_channels", "[]"),
        ("vae", "scaling_factor", "0"),
        ("vae", "norm_num_groups", "0"),
        ("vae", "norm_num_groups", "-4"),
        ("vae", "layers_per_block", "1000000000"),
        ("vae", "latent_channels", "-1"),
        ("text_encoder", "num_attention_heads", "0"),
        ("text_encoder", "multi_query_group_num", "0"),
        ("text_encoder", "num_layers", "-1"),
        ("text_encoder", "hidden_size", "0"),
        ("text_encoder", "kv_channels", "0"),
        ("text_encoder", "layernorm_epsilon", "-1"),
        ("text_encoder", "padded_vocab_size", "0"),
        ("scheduler", "beta_start", "0"),
        ("scheduler", "beta_end", "1.5"),
        ("scheduler", "num_train_timesteps", "1000000000"),
        ("scheduler", "steps_offset", "9223372036854775807"),
        ("scheduler", "solver_order", "99"),
        ("scheduler", "sigma_min", "-1"),
    ]

    static func configFile(_ component: String) -> String {
        component == "scheduler" ? "scheduler/scheduler_config.json" : "\(component)/config.json"
    }

    /// Sets one key of a component's config to raw JSON text.
    static func setKey(_ m: CheckpointCopy, _ component: String, _ key: String, _ json: String) throws {
        let file = configFile(component)
        var object = try JSONSerialization.jsonObject(with: try m.original(file)) as? [String: Any] ?? [:]
        object[key] = "@@VALUE@@"
        var text = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"@@VALUE@@\"", with: json)
        try m.replaceText(file, text)
    }

    @Test("out-of-range config values: info (with and without --load-weights) names file and key", arguments: configCases.indices)
    func configValueInInfo(_ index: Int) throws {
        let (component, key, value) = Self.configCases[index]
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        try Self.setKey(m, component, key, value)
        let file = Self.configFile(component).replacingOccurrences(of: "scheduler/", with: "")
        try Self.expectRefused(["info", "--model", m.path, "--load-weights"], mentioning: [file, key])
        try Self.expectRefused(["info", "--model", m.path], mentioning: [file, key])
    }

    @Test("out-of-range config values: generate fails the same way before loading weights",
          arguments: [0, 4, 6, 12, 19, 21, 23, 28, 34, 36])
    func configValueInGenerate(_ index: Int) throws {
        let (component, key, value) = Self.configCases[index]
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        try Self.setKey(m, component, key, value)
        let dir = try TemporaryDirectory()
        try Self.expectRefused(Self.generate(m.path, [], output: dir.path + "/o.png"), mentioning: [key])
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/o.png"))
    }

    @Test("configs that are valid alone but do not fit each other are refused when the pipeline opens", arguments: [
        ("unet", "encoder_hid_dim_type", "null", "cross_attention_dim 32 does not match the text encoder's hidden_size 48"),
        ("unet", "encoder_hid_dim", "40", "encoder_hid_dim 40 does not match"),
        ("unet", "projection_class_embeddings_input_dim", "100", "projection_class_embeddings_input_dim 100"),
        ("vae", "latent_channels", "8", "latent_channels 8"),
    ])
    func componentsMustFit(component: String, key: String, value: String, message: String) throws {
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        try Self.setKey(m, component, key, value)
        let dir = try TemporaryDirectory()
        try Self.expectRefused(Self.generate(m.path, [], output: dir.path + "/o.png"), mentioning: [message])
    }

    @Test("linear transformer projections read as 1×1 convolutions (use_linear_projection: false) still run")
    func projectionStoredAsLinear() throws {
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        try Self.setKey(m, "unet", "use_linear_projection", "false")
        let dir = try TemporaryDirectory()
        let r = try CLI.runMeasured(Self.generate(m.path, [], output: dir.path + "/o.png"))
        #expect(r.status == 0, "\(r)")
    }

    @Test("a default size from unet sample_size beyond 4096 pixels is refused before anything loads")
    func defaultSizeTooLarge() throws {
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        // 8 VAE levels: 128 pixels per latent cell, so sample_size 64 means 8192².
        try m.editJSON("vae/config.json") { c in
            c["block_out_channels"] = [Int](repeating: 16, count: 8)
            c["down_block_types"] = [String](repeating: "DownEncoderBlock2D", count: 8)
            c["up_block_types"] = [String](repeating: "UpDecoderBlock2D", count: 8)
        }
        try m.editJSON("unet/config.json") { $0["sample_size"] = 64 }
        let dir = try TemporaryDirectory()
        try Self.expectRefused(["generate", "--model", m.path, "--prompt", "x", "--steps", "1", "--output", dir.path + "/o.png"],
                               mentioning: ["default size 8192"])
    }

    // MARK: - weights and numbers that overflow (defect 1)

    /// Overwrites the first `count` stored values of `tensor` in a component's fp16 file.
    static func poison(_ m: CheckpointCopy, _ file: String, _ tensor: String, bits: UInt16, count: Int = 4) throws {
        let original = try m.original(file)
        let st = try SafetensorsFile(path: m.path + "/" + file)
        let info = try #require(st.info(tensor))
        #expect(info.dtype == .f16)
        let headerLength = original.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        var bytes = [UInt8](original)
        for k in 0..<count {
            let at = 8 + headerLength + info.range.lowerBound + 2 * k
            bytes[at] = UInt8(bits & 0xFF)
            bytes[at + 1] = UInt8(bits >> 8)
        }
        try m.replace(file, with: Data(bytes))
    }

    @Test("NaN in a UNet weight: info refuses the file; generate names the step, writes nothing, does not trap")
    func nanWeights() throws {
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        try Self.poison(m, "unet/diffusion_pytorch_model.fp16.safetensors", "conv_in.weight", bits: 0x7E00)
        try Self.expectRefused(["info", "--model", m.path, "--load-weights"], mentioning: ["conv_in.weight", "NaN"])
        let dir = try TemporaryDirectory()
        try Self.expectRefused(Self.generate(m.path, [], output: dir.path + "/o.png"), mentioning: ["step 1 of 1", "NaN"],
                               afterLoading: true)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/o.png"))
    }

    @Test("fp16 weights saturated at 65504 are not called usable")
    func saturatedWeights() throws {
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        try Self.poison(m, "text_encoder/model.fp16-00001-of-00002.safetensors",
                        try #require(SafetensorsFile(path: CLI.tinyKolors + "/text_encoder/model.fp16-00001-of-00002.safetensors")
                            .names.first { $0.hasSuffix("weight") }), bits: 0x7BFF)
        try Self.expectRefused(["info", "--model", m.path, "--load-weights"], mentioning: ["65504"])
    }

    @Test("infinite VAE weights: the finished run still writes its image and latents, with a warning")
    func infiniteVAEWeights() throws {
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        try Self.poison(m, "vae/diffusion_pytorch_model.fp16.safetensors", "decoder.conv_out.weight", bits: 0x7C00, count: 64)
        try Self.expectRefused(["info", "--model", m.path, "--load-weights"], mentioning: ["decoder.conv_out.weight", "infinite"])
        let dir = try TemporaryDirectory()
        let r = try CLI.runMeasured(Self.generate(m.path, ["--save-latents", dir.path + "/l.npy"], output: dir.path + "/o.png"))
        #expect(r.signal == nil && r.status == 0, "\(r)")
        #expect(r.stderr.contains("warning: the VAE decoder produced"), "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.path + "/o.png"))
        #expect(FileManager.default.fileExists(atPath: dir.path + "/l.npy"))
    }

    @Test("guidance, LoRA weights and IP-Adapter scales that would overflow are refused up front")
    func hugeScales() throws {
        let dir = try TemporaryDirectory()
        let out = dir.path + "/o.png"
        try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--guidance", "1e38"], output: out), mentioning: ["guidance must be between 0"])
        try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--lora", CLI.fixture("loras/peft_lora.safetensors") + ":1e38"], output: out),
                               mentioning: ["peft_lora.safetensors", "weight must be between"])
        try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--ip-adapter", CLI.fixture("ip-adapter-plus"),
                                                              "--ip-image", CLI.fixture("references/img2img_input_75x61.png"),
                                                              "--ip-scale", "1e38"], output: out),
                               mentioning: ["IP-Adapter scale must be between"])
    }

    // MARK: - tokenizer (defect 8)

    @Test("a tokenizer with more ids than the text encoder embeds is refused by generate, not trapped on")
    func tokenizerLargerThanEmbedding() throws {
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        try m.editJSON("text_encoder/config.json") { $0["padded_vocab_size"] = 100 }
        let dir = try TemporaryDirectory()
        try Self.expectRefused(Self.generate(m.path, [], output: dir.path + "/o.png"), mentioning: ["tokenizer has", "padded_vocab_size"])
    }

    // MARK: - LoRA and IP-Adapter files (defects 9, 10)

    static func writeLoRA(_ dir: TemporaryDirectory, _ name: String, _ tensors: [(String, [Int])],
                          metadata: [String: String] = [:]) throws -> String {
        let path = dir.path + "/" + name
        try SafetensorsWriter.write(tensors.map { ($0.0, Tensor.full($0.1, 0.01), DType.f32) }, metadata: metadata, to: path)
        return path
    }

    @Test("LoRA files: rank 0, negative or Int.min SGM block numbers, a rank of 1e300 — one line each")
    func hostileLoRAs() throws {
        let dir = try TemporaryDirectory()
        let module = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
        let cases: [(String, [(String, [Int])], [String: String], String)] = [
            ("rank0.safetensors", [(module + ".lora_A.weight", [0, 16]), (module + ".lora_B.weight", [16, 0])], [:], "rank 0"),
            ("sgm_negative.safetensors", [("lora_unet_output_blocks_0_-1_conv1.lora_down.weight", [4, 16, 3, 3]),
                                          ("lora_unet_output_blocks_0_-1_conv1.lora_up.weight", [16, 4, 1, 1]),
                                          ("lora_unet_output_blocks_0_-1_conv1.alpha", [])], [:], "SGM layer"),
            ("sgm_intmin.safetensors", [("lora_unet_input_blocks_-9223372036854775808_0_conv1.lora_down.weight", [4, 16, 3, 3]),
                                        ("lora_unet_input_blocks_-9223372036854775808_0_conv1.lora_up.weight", [16, 4, 1, 1])],
             [:], "SGM block number"),
            ("huge_r.safetensors", [(module + ".lora_A.weight", [4, 16]), (module + ".lora_B.weight", [16, 4])],
             ["lora_adapter_metadata": #"{"unet.r": 1e300, "unet.lora_alpha": 4}"#], "unet.r"),
            ("huge_alpha.safetensors", [(module + ".lora_A.weight", [4, 16]), (module + ".lora_B.weight", [16, 4])],
             ["lora_adapter_metadata": #"{"unet.r": 4, "unet.lora_alpha": 1e300}"#], "unet.lora_alpha"),
        ]
        for (name, tensors, metadata, message) in cases {
            let path = try Self.writeLoRA(dir, name, tensors, metadata: metadata)
            try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--lora", path], output: dir.path + "/o.png"),
                                   mentioning: [name, message], afterLoading: true)
        }
    }

    @Test("an IP-Adapter file whose to_q declares [2^62, 0] is refused with one line")
    func hostileIPAdapter() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/ip.safetensors"
        try SafetensorsWriter.write([
            ("image_proj.latents", Tensor.full([1, 4, 64], 0), .f32),
            ("image_proj.proj_in.weight", Tensor.full([64, 32], 0), .f32),
            ("image_proj.proj_out.weight", Tensor.full([32, 64], 0), .f32),
            ("image_proj.layers.0.0.to_q.weight", Tensor.full([1 << 62, 0], 0), .f32),
            ("image_proj.layers.0.1.1.weight", Tensor.full([256, 64], 0), .f32),
            ("ip_adapter.1.to_k_ip.weight", Tensor.full([16, 32], 0), .f32),
            ("ip_adapter.1.to_v_ip.weight", Tensor.full([16, 32], 0), .f32),
        ], to: path)
        try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--ip-adapter", path, "--ip-image",
                                                              CLI.fixture("references/img2img_input_75x61.png")],
                                             output: dir.path + "/o.png"),
                               mentioning: ["ip.safetensors", "to_q.weight"], afterLoading: true)
    }

    // MARK: - PNG files (defects 6, 7)

    @Test("a tEXt chunk declaring 2 GB costs nothing: --image and metadata fail in one line")
    func hugeDeclaredTextChunk() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/decl.png"
        let header = PNGBytes.signature + PNGBytes.ihdr(width: 8, height: 8)
        let bogus = PNGBytes.chunk("tEXt", Array("parameters".utf8) + [0] + [UInt8](repeating: 0x61, count: 9800),
                                   declaredLength: 0x7FFF_FFFF)
        try Data(header + bogus.prefix(bogus.count - 4)).write(to: URL(fileURLWithPath: path))
        try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--image", path], output: dir.path + "/o.png"),
                               mentioning: ["cannot read --image", "decl.png"])
        try Self.expectRefused(["metadata", path], mentioning: ["decl.png"])
    }

    /// 100 zTXt chunks that each inflate to 3.9 MB (390 MB in all) in a 2.6 MB file.
    static func bombPNG(_ dir: TemporaryDirectory) throws -> String {
        let bomb = PNGBytes.zlibRepeated(0x61, count: 3_900_000)
        let chunks = (0..<100).map { PNGBytes.chunk("zTXt", Array("k\($0)".utf8) + [0, 0] + bomb) }
        let path = dir.path + "/bombs.png"
        try Data(PNGBytes.png(before: chunks)).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("zTXt bombs are bounded: metadata says there is nothing, --image uses the pixels, both quickly and in little memory")
    func zTXtBombs() throws {
        let dir = try TemporaryDirectory()
        let path = try Self.bombPNG(dir)
        let meta = try Self.expectRefused(["metadata", path], mentioning: ["bombs.png", "no generation settings"], timeout: 30)
        #expect(meta.seconds < 15, "\(meta)")
        let r = try CLI.runMeasured(Self.generate(CLI.tinyKolors, ["--image", path, "--strength", "1"], output: dir.path + "/o.png"),
                                    timeout: 30)
        #expect(r.signal == nil && r.status == 0, "\(r)")
        #expect(r.maxRSS < Self.memoryLimit && r.seconds < 15, "\(r)")
    }

    @Test("input images beyond 4096 pixels a side are refused before their pixels are decoded")
    func hugeInputImages() throws {
        let dir = try TemporaryDirectory()
        // 16384² declared; the IDAT is never reached.
        let huge = dir.path + "/huge.png"
        try Data(PNGBytes.signature + PNGBytes.ihdr(width: 16384, height: 16384)
                 + PNGBytes.chunk("IDAT", PNGBytes.zlibRepeated(0, count: 100_000)) + PNGBytes.chunk("IEND", []))
            .write(to: URL(fileURLWithPath: huge))
        try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--image", huge], output: dir.path + "/o.png"),
                               mentioning: ["huge.png", "16384x16384"])
        try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--ip-adapter", CLI.fixture("ip-adapter-plus"), "--ip-image", huge],
                                             output: dir.path + "/o.png"), mentioning: ["--ip-image", "16384x16384"])
        // 100000×8: few pixels, but a 100000-wide output.
        let wide = dir.path + "/wide.png"
        let idat = PNGBytes.zlibRepeated(0, count: 8 * (100_000 * 3 + 1))  // filter byte 0 and black pixels
        try Data(PNGBytes.signature + PNGBytes.ihdr(width: 100_000, height: 8) + PNGBytes.chunk("IDAT", idat) + PNGBytes.chunk("IEND", []))
            .write(to: URL(fileURLWithPath: wide))
        try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--image", wide], output: dir.path + "/o.png"),
                               mentioning: ["100000×8", "at most 4096×4096"])
    }

    // MARK: - FIFOs and output paths (defect 12, issue 16 item 4)

    @Test("a FIFO in place of a weights file, a config or an image gives an error at once")
    func fifos() throws {
        let m = try CheckpointCopy(of: CLI.tinyKolors)
        let dir = try TemporaryDirectory()
        for file in ["unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json"] {
            try? FileManager.default.removeItem(atPath: m.path + "/" + file)
            #expect(mkfifo(m.path + "/" + file, 0o644) == 0)
        }
        try Self.expectRefused(["info", "--model", m.path], mentioning: ["diffusion_pytorch_model.fp16.safetensors", "not a regular file"],
                               timeout: 20)
        try Self.expectRefused(["info", "--model", m.path, "--load-weights", "--variant", "full"], mentioning: ["vae", "FIFO"], timeout: 20)
        let fifo = dir.path + "/in.png"
        #expect(mkfifo(fifo, 0o644) == 0)
        try Self.expectRefused(Self.generate(CLI.tinyKolors, ["--image", fifo], output: dir.path + "/o.png"),
                               mentioning: ["in.png", "not a regular file"], timeout: 20)
        try Self.expectRefused(["metadata", fifo], mentioning: ["in.png", "not a regular file"], timeout: 20)
    }

    @Test("--output into a missing folder, onto a folder or an existing file fails before the model loads")
    func outputChecked() throws {
        let dir = try TemporaryDirectory()
        // A model that cannot load: the output error must come first.
        let broken = ["generate", "--model", "/nonexistent/model", "--prompt", "x"]
        try Self.expectRefused(broken + ["--output", dir.path + "/missing/x.png"], mentioning: ["--output", "does not exist"])
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir.path + "/file"))
        try Self.expectRefused(broken + ["--output", dir.path + "/file/x.png"], mentioning: ["--output", "not a folder"])
        try FileManager.default.createDirectory(atPath: dir.path + "/d.png", withIntermediateDirectories: true)
        try Self.expectRefused(broken + ["--output", dir.path + "/d.png"], mentioning: ["is a folder"])
        try Data("old".utf8).write(to: URL(fileURLWithPath: dir.path + "/x.png"))
        try Self.expectRefused(broken + ["--output", dir.path + "/x.png"], mentioning: ["already exists", "--overwrite"])
        try Data("old".utf8).write(to: URL(fileURLWithPath: dir.path + "/y-1.png"))
        try Self.expectRefused(broken + ["--num-images", "2", "--output", dir.path + "/y.png"], mentioning: ["y-1.png", "already exists"])
        try Self.expectRefused(broken + ["--output", dir.path + "/z.png", "--save-latents", dir.path + "/missing/l.npy"],
                               mentioning: ["--save-latents", "does not exist"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.contains(".tmp-") })

        // With --overwrite the existing file is replaced by the new image.
        let r = try CLI.runMeasured(Self.generate(CLI.tinyKolors, ["--overwrite"], output: dir.path + "/x.png"))
        #expect(r.status == 0, "\(r)")
        #expect(try PNGFile.read(dir.path + "/x.png").image.width == 64)
        // --help says so.
        let help = try CLI.run(["generate", "--help"])
        #expect(help.stdout.contains("--overwrite"))
    }

    @Test("--output into a read-only folder fails before the model loads", .enabled(if: getuid() != 0))
    func readOnlyOutputFolder() throws {
        let dir = try TemporaryDirectory()
        let ro = dir.path + "/ro"
        try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: true)
        chmod(ro, 0o555)
        defer { chmod(ro, 0o755) }
        try Self.expectRefused(["generate", "--model", "/nonexistent/model", "--prompt", "x", "--output", ro + "/x.png"],
                               mentioning: ["--output", "cannot write"])
    }

    @Test("finished work is not lost: an output folder removed during the run sends the image to the temporary folder")
    func outputFolderRemovedMidRun() throws {
        let dir = try TemporaryDirectory()
        let out = dir.path + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let errPath = dir.path + "/stderr"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["generate", "--model", CLI.tinyKolors, "--prompt", "x", "--steps", "2", "--width", "512",
                             "--height", "512", "--seed", "4", "--precision", "fp32", "--output", out + "/x.png"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline
                && !((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "").contains("step 2/2") {
            usleep(500)
        }
        try FileManager.default.removeItem(atPath: out)
        process.waitUntilExit()
        let stderr = try String(contentsOfFile: errPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(stderr)")
        let last = stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("Error: 1 file(s) could not be written where asked: "), "\(stderr)")
        let rescued = String(last.dropFirst("Error: 1 file(s) could not be written where asked: ".count))
        defer { try? FileManager.default.removeItem(atPath: rescued) }
        #expect(try PNGFile.read(rescued).image.width == 512, "\(rescued)")
    }

    @Test("a second Ctrl-C while PNGs are being written leaves no temporary file behind")
    func secondInterruptDuringWrite() throws {
        let dir = try TemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        // 40 images of 512² without guidance: generated in a few seconds, then written for ~4 s
        // (a long enough window to interrupt in, also while other tests load the machine).
        process.arguments = ["generate", "--model", CLI.tinyKolors, "--prompt", "x", "--steps", "1", "--width", "512",
                             "--height", "512", "--num-images", "40", "--guidance", "1", "--seed", "3", "--precision", "fp32",
                             "--output", dir.path + "/big.png"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until the first image is written and the next one is being written (its
        // temporary file exists), then interrupt twice.
        let deadline = Date().addingTimeInterval(120)
        func writing() -> Bool {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return files.contains("big-0.png") && files.contains { $0.contains(".tmp-") }
        }
        while process.isRunning && Date() < deadline && !writing() {
            usleep(200)
        }
        kill(process.processIdentifier, SIGINT)
        usleep(5000)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(process.terminationReason == .exit && process.terminationStatus == 130, "status \(process.terminationStatus), files \(files)")
        #expect(files.contains("big-0.png"))
        #expect(!files.contains("big-39.png"), "all images were written before the interrupt: the test proved nothing")
        #expect(files.allSatisfy { !$0.contains(".tmp-") }, "left behind: \(files)")
    }

    // MARK: - CLI values (defect 11)

    @Test("--threads, --num-images and tokenize --max-length are bounded", arguments: [
        (["--threads", "0"], "--threads must be between 1 and 256"),
        (["--threads=-1"], "--threads must be between 1 and 256"),
        (["--threads", "1000"], "--threads must be between 1 and 256"),
        (["--num-images", "1000000"], "--num-images must be between 1 and 64"),
        (["--num-images", "9223372036854775807", "--prompt", "y"], "--num-images must be between 1 and 64"),
        (["--num-images", "64", "--prompt", "y"], "2 prompts × --num-images 64"),
    ])
    func cliBounds(extra: [String], message: String) throws {
        let dir = try TemporaryDirectory()
        try Self.expectRefused(["generate", "--model", CLI.tinyKolors, "--prompt", "x", "--output", dir.path + "/o.png"] + extra,
                               mentioning: [message])
    }

    @Test("tokenize --max-length is bounded")
    func tokenizeMaxLength() throws {
        for value in ["4611686018427387904", "1", "0", "100000"] {
            try Self.expectRefused(["tokenize", "--model", CLI.tinyKolors, "--max-length", value, "--", "x"],
                                   mentioning: ["--max-length must be between 2 and 65536"])
        }
    }
}
