import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsModels
import Testing
import KolorsTestSupport

/// The CLIP image encoder and image processor against transformers
/// (Tests/Fixtures/references/ip_lora.safetensors, tiny CLIPVisionModelWithProjection).
@Suite("CLIP image encoder parity")
struct CLIPParityTests {
    static let encoderDir = Fixtures.path("ip-adapter-plus/image_encoder")
    static let images = ["ip_image_90x70.png", "ip_image_50x77.png"]

    @Test("pixel values equal CLIPImageProcessor's PIL path (resize, crop, rescale, normalise)", arguments: images)
    func pixelValues(_ name: String) throws {
        let refs = try Fixtures.References("ip_lora.safetensors")
        let image = try PNGFile.read(Fixtures.path("references/\(name)")).image
        let processor = try CLIPImageProcessor.forEncoder(directory: Self.encoderDir, imageSize: 56)
        let got = try processor(image)
        let want = try refs["clip.\(name).pixel_values"]
        #expect(got.shape == want.shape)
        let err = maxAbsDifference(got, want)
        #expect(err <= 1e-6, "\(name): max abs difference \(err)")
    }

    @Test("hidden_states[0] and hidden_states[-2], for an image and the all-zero image", arguments: images)
    func imageEmbeds(_ name: String) throws {
        let refs = try Fixtures.References("ip_lora.safetensors")
        let clip = try CLIPVisionModel.load(directory: Self.encoderDir)
        #expect(clip.hiddenStatesIndex == 2)
        #expect(Set(clip.unusedWeights).isSuperset(of: ["vision_model.post_layernorm.weight", "visual_projection.weight"]))
        #expect(!clip.unusedWeights.contains { $0.hasPrefix("vision_model.encoder.layers.0.") })
        let pixels = try refs["clip.\(name).pixel_values"]
        let e0 = relativeError(clip.embed(pixels), try refs["clip.\(name).hidden_states.0"])
        #expect(e0 <= 1e-5, "hidden_states.0: \(e0)")
        let err = relativeError(try clip(pixels), try refs["clip.\(name).image_embeds"])
        #expect(err <= 1e-4, "image_embeds: \(err)")
        let zero = relativeError(try clip(Tensor.zeros(pixels.shape)), try refs["clip.zero_image_embeds"])
        #expect(zero <= 1e-4, "zero image: \(zero)")
    }

    @Test("a pickled image encoder is refused with a clear message")
    func pickleRefused() throws {
        let dir = try TemporaryFolder()
        try FileManager.default.copyItem(atPath: Self.encoderDir + "/config.json", toPath: dir.path + "/config.json")
        _ = FileManager.default.createFile(atPath: dir.path + "/pytorch_model.bin", contents: Data([0x80, 0x02]))
        do {
            _ = try CLIPVisionModel.load(directory: dir.path)
            Issue.record("loaded a pickle")
        } catch let e as CheckpointError {
            #expect(e.message.contains("pytorch_model.bin is a PyTorch pickle"), "\(e.message)")
            #expect(e.message.contains("model.safetensors"))
        }
    }

    @Test("preprocessor_config.json is read when present; one that does not fit the encoder is not")
    func preprocessorConfig() throws {
        let dir = try TemporaryFolder()
        let good = #"{"size": {"shortest_edge": 56}, "crop_size": 56, "resample": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#
        try good.write(toFile: dir.path + "/preprocessor_config.json", atomically: true, encoding: .utf8)
        let p = try CLIPImageProcessor.forEncoder(directory: dir.path, imageSize: 56)
        #expect(p.resample == .bilinear && p.mean == [0.5, 0.5, 0.5] && p.notes.isEmpty)
        #expect(p.resizedSize(width: 90, height: 70) == (72, 56))
        #expect(p.resizedSize(width: 50, height: 77) == (56, 86))
        let bad = #"{"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224}}"#
        try bad.write(toFile: dir.path + "/preprocessor_config.json", atomically: true, encoding: .utf8)
        let q = try CLIPImageProcessor.forEncoder(directory: dir.path, imageSize: 56)
        #expect(q == { var d = CLIPImageProcessor(imageSize: 56); d.notes = q.notes; return d }())
        #expect(q.notes.first?.contains("224×224") == true)
        // no file: diffusers' CLIPImageProcessor(size=image_size, crop_size=image_size)
        #expect(try CLIPImageProcessor.forEncoder(directory: Self.encoderDir, imageSize: 56) == CLIPImageProcessor(imageSize: 56))
    }
}

/// max |a − b|
func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a.pointer[i] - b.pointer[i])) }
    return m
}

/// A fresh folder under the temporary directory, removed when released.
final class TemporaryFolder {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
