import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import Testing
import KolorsTestSupport

/// `kolors generate` with --ip-adapter and --lora, on the tiny checkpoint, against diffusers
/// (Tests/Fixtures/references/ip_lora.*).
@Suite("kolors generate with IP-Adapter and LoRA", .enabled(if: CLI.available))
struct GenerateAdapterTests {
    static let prompt = "A photo of an astronaut riding a horse on the moon, highly detailed"

    func maxPixelDifference(_ path: String, _ reference: String) throws -> Float {
        let image = try PNGFile.read(path).image
        let refs = try SafetensorsFile(path: CLI.fixture("references/ip_lora.safetensors"))
        let want = try refs.mapped(reference).toFloat32()
        #expect(image.pixels.count == want.count)
        var worst: Float = 0
        for k in 0..<min(image.pixels.count, want.count) { worst = max(worst, abs(Float(image.pixels[k]) - want.pointer[k])) }
        return worst
    }

    @Test("--ip-adapter folder --ip-image --ip-scale 0.5 gives diffusers' image; metadata records it")
    func ipAdapter() throws {
        let dir = try TemporaryDirectory()
        let out = dir.path + "/ip.png"
        let result = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt", Self.prompt, "--steps", "4", "--seed", "0",
                                  "--variant", "full", "--ip-adapter", CLI.fixture("ip-adapter-plus"),
                                  "--ip-image", CLI.fixture("references/ip_image_90x70.png"), "--ip-scale", "0.5", "--output", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("IP-Adapter scale 0.5"))
        let worst = try maxPixelDifference(out, "ip-euler-s0.5.image_uint8")
        #expect(worst <= 1, "pixels differ by up to \(worst)/255")
        let parsed = try #require(ImageMetadata.parse(try PNGFile.read(out).texts))
        let ip = try #require(parsed.parameters.ipAdapter)
        #expect(ip.path == CLI.fixture("ip-adapter-plus") && ip.image.hasSuffix("ip_image_90x70.png") && ip.scale == 0.5)
    }

    @Test("two --lora FILE:WEIGHT give diffusers' set_adapters image; <lora:…> tags in the A1111 prompt line")
    func loras() throws {
        let dir = try TemporaryDirectory()
        let out = dir.path + "/lora.png"
        let result = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt", Self.prompt, "--steps", "4", "--seed", "0",
                                  "--variant", "full", "--lora", CLI.fixture("loras/peft_lora.safetensors") + ":0.6",
                                  "--lora", CLI.fixture("loras/kohya_lora.safetensors") + ":1.3", "--output", out])
        #expect(result.status == 0, "\(result.stderr)")
        let worst = try maxPixelDifference(out, "lora-peft+kohya.image_uint8")
        #expect(worst <= 1, "pixels differ by up to \(worst)/255")
        let texts = try PNGFile.read(out).texts
        let a1111 = try #require(texts.first { $0.key == "parameters" })
        #expect(a1111.value.hasPrefix(Self.prompt + " <lora:peft_lora:0.6> <lora:kohya_lora:1.3>\n"), "\(a1111.value)")
        let parsed = try #require(ImageMetadata.parse(texts))
        #expect(parsed.parameters.prompt == Self.prompt)
        #expect(parsed.parameters.loras.map(\.weight) == [0.6, 1.3])
        #expect(parsed.parameters.loras.first?.path.hasSuffix("peft_lora.safetensors") == true)
    }

    @Test(arguments: [
        (["--ip-adapter", "/nonexistent"], "--ip-adapter needs a reference image: add --ip-image PNG"),
        (["--ip-image", "x.png"], "--ip-image and --image-encoder need --ip-adapter"),
        (["--ip-adapter", "/nonexistent", "--ip-image", "/nonexistent.png"], "cannot read --ip-image"),
        (["--ip-scale", "nan"], "--ip-scale must be a number"),
        (["--lora", "/nonexistent.safetensors:0.5"], "--lora /nonexistent.safetensors: no such file"),
        (["--lora", "/nonexistent.safetensors:strong"], "--lora /nonexistent.safetensors:strong: no such file"),
        (["--lora", "/x.safetensors:inf"], "the weight must be a finite number"),
    ])
    func badInput(extra: [String], message: String) throws {
        let result = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt", "x"] + extra)
        #expect(result.status != 0)
        let err = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!err.contains("\n"), "one line: \(err)")
        #expect(err.contains(message), "\(err)")
    }

    @Test("a LoRA for another UNet fails with the layers named")
    func wrongLoRA() throws {
        let result = try CLI.run(["generate", "--model", CLI.tinyKolors, "--prompt", "x", "--steps", "1", "--width", "32",
                                  "--height", "32", "--lora", CLI.fixture("ip-adapter-plus/image_encoder/model.safetensors")])
        #expect(result.status != 0)
        #expect(result.stderr.contains("LoRA model.safetensors"), "\(result.stderr)")
    }
}
