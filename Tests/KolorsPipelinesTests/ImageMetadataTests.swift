import Foundation
import KolorsImageIO
import KolorsPipelines
import Testing
import KolorsTestSupport

@Suite("Image metadata")
struct ImageMetadataTests {
    @Test("A1111 parameters text has the expected shape")
    func a1111Shape() {
        let p = GenerationParameters(prompt: "a red fox, snow", negativePrompt: "blurry", seed: 66)
        let text = ImageMetadata.a1111Parameters(p, software: "kolors-studio 0.1.0")
        #expect(text == """
        a red fox, snow
        Negative prompt: blurry
        Steps: 25, Sampler: Euler, CFG scale: 5.0, Seed: 66, Size: 1024x1024, Model: Kolors, Version: kolors-studio 0.1.0
        """)
        // empty negative prompt: the line is omitted; Karras becomes a Schedule type
        let q = GenerationParameters(prompt: "x", width: 1152, height: 896, guidance: 6.5, scheduler: "dpm++2m-karras",
                                     model: "C:\\models, Kolors")
        let t = ImageMetadata.a1111Parameters(q, software: "v")
        #expect(t == #"""
        x
        Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 66, Size: 1152x896, Model: "C:\\models, Kolors", Version: v
        """#)
    }

    @Test("our chunks round-trip through a PNG file, Chinese prompt in iTXt")
    func pngRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-meta-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = GenerationParameters(prompt: "一只可爱的小猫，坐在窗台上, sunlight: warm\nsecond line 🐱",
                                     negativePrompt: "低质量, \"bad\" hands", width: 832, height: 1216, steps: 30,
                                     guidance: 4.5, seed: UInt64.max - 3, scheduler: "euler-a", imagesPerPrompt: 2,
                                     initImage: "/tmp/in put.png", strength: 0.45, model: "/models/Kolors-diffusers",
                                     loras: [.init(path: "/l/a.safetensors", weight: 0.8)])
        let record = ImageRecord(parameters: p, batchIndex: 1, created: "2025-01-01T00:00:00Z", seconds: 12.5)
        let texts = ImageMetadata.texts(for: record)
        #expect(texts.map(\.key) == ["parameters", "kolors"])
        #expect(texts[0].kind == .international, "a Chinese prompt must go into iTXt")
        #expect(texts[1].kind == .international)
        let path = dir.appendingPathComponent("a.png").path
        try PNGFile.write(RGBImage(width: 4, height: 4), to: path, texts: texts)
        let back = try PNGFile.readText(path)
        let parsed = try #require(ImageMetadata.parse(back.texts))
        #expect(parsed.source == .kolors)
        #expect(parsed.parameters == p)
        #expect(parsed.record == record)
        #expect(parsed.batchIndex == 1)

        // Without our JSON the A1111 text alone restores everything it carries.
        let a1111 = try #require(ImageMetadata.parse(back.texts.filter { $0.key == "parameters" }))
        #expect(a1111.source == .a1111)
        #expect(a1111.parameters.prompt == p.prompt)
        #expect(a1111.parameters.negativePrompt == p.negativePrompt)
        #expect(a1111.parameters.width == 832 && a1111.parameters.height == 1216)
        #expect(a1111.parameters.steps == 30 && a1111.parameters.guidance == 4.5)
        #expect(a1111.parameters.seed == UInt64.max - 3)
        #expect(a1111.parameters.scheduler == "euler-a")
        #expect(a1111.parameters.strength == 0.45)
        #expect(a1111.parameters.imagesPerPrompt == 2 && a1111.batchIndex == 1)
        #expect(a1111.parameters.model == "/models/Kolors-diffusers")
        #expect(a1111.warnings.isEmpty)
    }

    @Test("a damaged JSON record falls back to the A1111 text with a warning")
    func damagedRecord() {
        let texts = [PNGText(key: "kolors", value: "{not json", kind: .international),
                     PNGText(key: "parameters", value: "cat\nSteps: 9, Sampler: DDIM, CFG scale: 3, Seed: 5", kind: .text)]
        let parsed = ImageMetadata.parse(texts)
        #expect(parsed?.parameters.steps == 9)
        #expect(parsed?.parameters.scheduler == "ddim")
        #expect(parsed?.warnings.first?.contains("damaged") == true)
        #expect(ImageMetadata.parse([PNGText(key: "Software", value: "GIMP", kind: .text)]) == nil)
    }

    @Test("foreign A1111 strings parse, with sampler names mapped", arguments: [
        ("DPM++ 2M Karras", nil as String?, "dpm++2m-karras"),
        ("DPM++ 2M", "Karras", "dpm++2m-karras"),
        ("DPM++ 2M", nil, "dpm++2m"),
        ("Euler a", nil, "euler-a"),
        ("Euler", nil, "euler"),
        ("DDIM", nil, "ddim"),
        ("UniPC", nil, "unipc"),
    ])
    func samplers(sampler: String, schedule: String?, expected: String) {
        let sched = schedule.map { ", Schedule type: \($0)" } ?? ""
        let text = "p\nSteps: 20, Sampler: \(sampler)\(sched), CFG scale: 7, Seed: 1, Size: 512x768"
        let parsed = ImageMetadata.parseA1111(text)
        #expect(parsed?.parameters.scheduler == expected)
        #expect(parsed?.warnings.isEmpty == true)
    }

    @Test("a real-world A1111 block: multi-line prompt, quoted values, extra keys, unknown sampler")
    func foreignBlock() throws {
        let text = """
        masterpiece, best quality, 1girl, (looking at viewer:1.2),
        <lora:detail:0.6> city lights
        Negative prompt: lowres, bad anatomy,
        worst quality
        Steps: 28, Sampler: DPM++ SDE, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, Size: 896x1152, \
        Model hash: 7f96a1a9ca, Model: animagine-xl-3.1, Denoising strength: 0.35, Clip skip: 2, \
        Lora hashes: "detail: 2b9dd2c2f5a0", Hires upscale: 1.5, Version: v1.9.4
        """
        let parsed = try #require(ImageMetadata.parseA1111(text))
        #expect(parsed.parameters.prompt == "masterpiece, best quality, 1girl, (looking at viewer:1.2),\ncity lights")
        #expect(parsed.parameters.loras == [.init(path: "detail", weight: 0.6, hash: "2b9dd2c2f5a0")])
        #expect(parsed.parameters.negativePrompt == "lowres, bad anatomy,\nworst quality")
        #expect(parsed.parameters.steps == 28)
        #expect(parsed.parameters.guidance == 6.5)
        #expect(parsed.parameters.seed == 3141592653)
        #expect(parsed.parameters.width == 896 && parsed.parameters.height == 1152)
        #expect(parsed.parameters.model == "animagine-xl-3.1")
        #expect(parsed.parameters.strength == 0.35)
        #expect(parsed.parameters.scheduler == "euler", "unknown sampler keeps the default")
        #expect(parsed.warnings.contains { $0.contains("DPM++ SDE") })
        #expect(parsed.fields.first { $0.key == "Lora hashes" }?.value == "detail: 2b9dd2c2f5a0")
        #expect(parsed.fields.first { $0.key == "Clip skip" }?.value == "2")
    }

    @Test("prompt-only text, negative seeds and CRLF are handled")
    func edgeCases() throws {
        let only = try #require(ImageMetadata.parseA1111("just a prompt, with commas"))
        #expect(only.parameters.prompt == "just a prompt, with commas")
        #expect(only.fields.isEmpty)
        let neg = try #require(ImageMetadata.parseA1111("a\r\nNegative prompt: b\r\nSteps: 5, Seed: -1, CFG scale: 2"))
        #expect(neg.parameters.prompt == "a" && neg.parameters.negativePrompt == "b")
        #expect(neg.parameters.seed == GenerationParameters.defaultSeed)
        #expect(neg.warnings.contains { $0.contains("negative") })
        #expect(ImageMetadata.parseA1111("  \n ") == nil)
    }

    @Test("quoting follows A1111 and unquote reverses it")
    func quoting() {
        #expect(ImageMetadata.quote("plain") == "plain")
        #expect(ImageMetadata.quote("a, b") == "\"a, b\"")
        #expect(ImageMetadata.quote("k: v\n\"x\"") == #""k: v\n\"x\"""#)
        for s in ["a, b", "k: v\n\"x\"", "中文：值", "back\\slash, tab\t"] {
            #expect(ImageMetadata.unquote(ImageMetadata.quote(s)) == s)
        }
    }

    @Test("parameters decode with missing keys filled by defaults")
    func lenientDecoding() throws {
        let p = try JSONDecoder().decode(GenerationParameters.self, from: Data(#"{"prompt":"x","steps":7}"#.utf8))
        #expect(p.prompt == "x" && p.steps == 7 && p.width == 1024 && p.guidance == 5 && p.scheduler == "euler")
        #expect(p.strength == 0.3 && p.initImage == nil && p.loras.isEmpty)
    }
}

@Suite("LoRA and IP-Adapter metadata")
struct LoRAMetadataTests {
    @Test("LoRAs become <lora:name:weight> tags and Lora hashes; parsing moves them out of the prompt")
    func loraRoundTrip() {
        var p = GenerationParameters(prompt: "a castle on a hill", seed: 5)
        p.loras = [.init(path: "/loras/style.safetensors", weight: 0.8, hash: "0123456789ab"), .init(path: "detail.safetensors")]
        p.ipAdapter = .init(path: "/models/Kolors-IP-Adapter-Plus", image: "/tmp/ref.png", scale: 0.5)
        let text = ImageMetadata.a1111Parameters(p)
        #expect(text.hasPrefix("a castle on a hill <lora:style:0.8> <lora:detail:1.0>\n"))
        #expect(text.contains("Lora hashes: \"style: 0123456789ab\""))
        #expect(text.contains("IP-Adapter: Kolors-IP-Adapter-Plus, IP-Adapter image: ref.png, IP-Adapter scale: 0.5"))
        let parsed = ImageMetadata.parseA1111(text)
        #expect(parsed?.parameters.prompt == "a castle on a hill")
        #expect(parsed?.parameters.loras == [.init(path: "style", weight: 0.8, hash: "0123456789ab"), .init(path: "detail", weight: 1)])
    }

    @Test("a foreign prompt with a tag in the middle and no weight")
    func foreignTags() {
        let parsed = ImageMetadata.parseA1111("<lora:ink:0.6> a fox, <lora:paper> snow\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512")
        #expect(parsed?.parameters.prompt == "a fox, snow")
        #expect(parsed?.parameters.loras.map(\.path) == ["ink", "paper"])
        #expect(parsed?.parameters.loras.map(\.weight) == [0.6, 1])
    }
}
