import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import Testing
import KolorsTestSupport

/// `kolors generate` as a user runs it, on the tiny checkpoint.
@Suite("kolors generate", .enabled(if: CLI.available))
struct GenerateCommandTests {
    @Test("writes the image diffusers makes, with A1111 and JSON metadata, and the latents as .npy")
    func matchesDiffusers() throws {
        let dir = try TemporaryDirectory()
        // Reference case t2i-euler: 5 Euler steps, seed 0, guidance 5, default 64×64, negative "".
        let result = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt",
                                  "A photo of an astronaut riding a horse on the moon, highly detailed",
                                  "--steps", "5", "--seed", "0", "--variant", "full", "--output", dir.path + "/out.png",
                                  "--save-latents", dir.path + "/latents.npy"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == dir.path + "/out.png\n")
        let (image, texts) = try PNGFile.read(dir.path + "/out.png")
        let refs = try SafetensorsFile(path: CLI.fixture("references/pipelines.safetensors"))
        let want = try refs.mapped("t2i-euler.image_uint8").toFloat32()
        #expect(image.width == 64 && image.height == 64)
        var worst: Float = 0
        for k in 0..<image.pixels.count { worst = max(worst, abs(Float(image.pixels[k]) - want.pointer[k])) }
        #expect(worst <= 1, "pixels differ by up to \(worst)/255")

        let parsed = try #require(ImageMetadata.parse(texts))
        #expect(parsed.source == .kolors)
        #expect(parsed.parameters.seed == 0 && parsed.parameters.steps == 5 && parsed.parameters.scheduler == "euler")
        #expect(parsed.record?.precision == "fp32")
        let a1111 = try #require(texts.first { $0.key == "parameters" })
        #expect(a1111.kind == .text)
        #expect(a1111.value.contains("Steps: 5, Sampler: Euler, CFG scale: 5.0, Seed: 0, Size: 64x64"))

        // .npy: magic, header with the batch shape, float32 data equal to diffusers' final latents
        let npy = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/latents.npy"))
        #expect(npy.prefix(6) == Data([0x93] + Array("NUMPY".utf8)))
        let (header, floats) = try CLI.readNpy(dir.path + "/latents.npy")
        #expect(header.contains("'shape': (1, 4, 8, 8)"))
        let latents = try refs.mapped("t2i-euler.final_latents").toFloat32()
        #expect(floats.count == latents.count)
        #expect(CLI.relativeL2(floats, latents.pointer, count: latents.count) <= 1e-4)
    }

    @Test("--precision bf16 computes with bf16 operands: near diffusers' float32 latents, not equal to them")
    func bf16Precision() throws {
        let dir = try TemporaryDirectory()
        let result = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt",
                                  "A photo of an astronaut riding a horse on the moon, highly detailed",
                                  "--steps", "5", "--seed", "0", "--variant", "full", "--precision", "bf16",
                                  "--output", dir.path + "/out.png", "--save-latents", dir.path + "/latents.npy"])
        #expect(result.status == 0, "\(result.stderr)")
        let floats = try CLI.readNpy(dir.path + "/latents.npy").values
        let refs = try SafetensorsFile(path: CLI.fixture("references/pipelines.safetensors"))
        let latents = try refs.mapped("t2i-euler.final_latents").toFloat32()
        try #require(floats.count == latents.count)
        let err = CLI.relativeL2(floats, latents.pointer, count: latents.count)
        #expect(err >= 1e-4 && err <= 5e-2, "bf16 final latents vs diffusers float32: relative error \(err)")
        let (_, texts) = try PNGFile.read(dir.path + "/out.png")
        #expect(ImageMetadata.parse(texts)?.record?.precision == "bf16", "the PNG records the precision")

        let bad = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt", "x", "--precision", "fp8"])
        #expect(bad.status != 0 && bad.stderr.contains("precision"), "\(bad.stderr)")
    }

    @Test("several prompts and images: -0, -1 … names, Chinese prompts in iTXt")
    func batchNames() throws {
        let dir = try TemporaryDirectory()
        let result = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt", "a red fox", "--prompt", "一只猫",
                                  "--num-images", "2", "--steps", "2", "--width", "32", "--height", "32",
                                  "--scheduler", "dpm++2m-karras", "--output", dir.path + "/b.png"])
        #expect(result.status == 0, "\(result.stderr)")
        let names = (0..<4).map { dir.path + "/b-\($0).png" }
        #expect(result.stdout == names.joined(separator: "\n") + "\n")
        let (_, texts) = try PNGFile.read(names[3])
        let a1111 = try #require(texts.first { $0.key == "parameters" })
        #expect(a1111.kind == .international)
        #expect(a1111.value.hasPrefix("一只猫\n"))
        #expect(a1111.value.contains("Sampler: DPM++ 2M, Schedule type: Karras"))
        #expect(ImageMetadata.parse(texts)?.batchIndex == 1)
    }

    @Test(arguments: [
        (["--scheduler", "heun"], "unknown scheduler 'heun'"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--width", "100"], "width must be a positive multiple of 8"),
        (["--guidance", "nan"], "--guidance must be a number"),
        (["--image", "/nonexistent.png"], "cannot read --image"),
        (["--output", "x.jpg"], "--output must end in .png"),
    ])
    func badInput(extra: [String], message: String) throws {
        let result = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt", "x"] + extra)
        #expect(result.status != 0)
        let err = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!err.contains("\n"), "one line: \(err)")
        #expect(err.contains(message), "\(err)")
    }

    @Test("a missing model is one line and a non-zero status")
    func missingModel() throws {
        let result = try CLI.run(["generate", "--model", "/nonexistent/model", "--prompt", "x"])
        #expect(result.status != 0)
        #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines) == "Error: /nonexistent/model: no such folder")
    }

    @Test("img2img from a PNG: output size follows the image")
    func img2img() throws {
        let dir = try TemporaryDirectory()
        let result = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt", "watercolor",
                                  "--image", CLI.fixture("references/img2img_input_75x61.png"), "--strength", "0.6",
                                  "--steps", "6", "--seed", "8", "--output", dir.path + "/i.png"])
        #expect(result.status == 0, "\(result.stderr)")
        let (image, texts) = try PNGFile.read(dir.path + "/i.png")
        #expect(image.width == 72 && image.height == 56)
        #expect(ImageMetadata.parse(texts)?.parameters.initImage?.hasSuffix("img2img_input_75x61.png") == true)
    }
}
