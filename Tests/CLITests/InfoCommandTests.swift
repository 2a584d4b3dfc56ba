import Foundation
import Testing
import KolorsTestSupport

/// `kolors info` as a user runs it.
@Suite("kolors info", .enabled(if: CLI.available))
struct InfoCommandTests {
    @Test("describes the tiny checkpoint and validates every tensor")
    func tiny() throws {
        let r = try CLI.run(["info", "--model", CLI.tinyKolors, "--load-weights"])
        #expect(r.status == 0, "\(r.stderr)")
        for needle in ["KolorsPipeline", "text_encoder  (kolors.ChatGLMModel)", "unet  (diffusers.UNet2DConditionModel)",
                       "vae  (diffusers.AutoencoderKL)", "every tensor matches the architecture",
                       "All weights mapped and checked: the checkpoint is usable."] {
            #expect(r.stdout.contains(needle), "missing '\(needle)'")
        }
    }

    func copyTiny(_ dir: TemporaryDirectory) throws -> String {
        let m = dir.path + "/m"
        try FileManager.default.copyItem(atPath: CLI.tinyKolors, toPath: m)
        return m
    }

    func expectOneLineFailure(_ r: CLI.Result, mentioning: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "status \(r.status)", sourceLocation: sourceLocation)
        let err = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!err.contains("\n"), "one line: \(err)", sourceLocation: sourceLocation)
        for m in mentioning { #expect(err.contains(m), "'\(err)' should mention '\(m)'", sourceLocation: sourceLocation) }
    }

    @Test("a truncated weight file is refused with its name")
    func truncated() throws {
        let dir = try TemporaryDirectory()
        let m = try copyTiny(dir)
        let path = m + "/unet/diffusion_pytorch_model.fp16.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 1000).write(to: URL(fileURLWithPath: path))
        expectOneLineFailure(try CLI.run(["info", "--model", m]), mentioning: ["diffusion_pytorch_model.fp16.safetensors", "truncated"])
    }

    @Test("a config that disagrees with the weights names component, file, tensor and shapes")
    func shapeMismatch() throws {
        let dir = try TemporaryDirectory()
        let m = try copyTiny(dir)
        let config = m + "/unet/config.json"
        var json = try String(contentsOfFile: config, encoding: .utf8)
        json = json.replacingOccurrences(of: "\"cross_attention_dim\": 32", with: "\"cross_attention_dim\": 40")
        try json.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try CLI.run(["info", "--model", m, "--load-weights"])
        expectOneLineFailure(r, mentioning: ["unet:", "diffusion_pytorch_model.fp16.safetensors", "encoder_hid_proj.weight", "[32, 48]", "[40, 48]"])
    }

    @Test("a missing component file and a pickle are refused")
    func missingAndPickle() throws {
        let dir = try TemporaryDirectory()
        let m = try copyTiny(dir)
        for f in ["diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"] {
            try FileManager.default.removeItem(atPath: m + "/vae/" + f)
        }
        expectOneLineFailure(try CLI.run(["info", "--model", m]), mentioning: ["vae: no safetensors weights"])
        try Data("pickle".utf8).write(to: URL(fileURLWithPath: m + "/vae/diffusion_pytorch_model.bin"))
        expectOneLineFailure(try CLI.run(["info", "--model", m]), mentioning: ["PyTorch pickle", "never loads"])
    }
}
