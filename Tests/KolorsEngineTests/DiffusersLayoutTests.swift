import Foundation
import KolorsEngine
import Testing
import KolorsTestSupport

@Suite("diffusers layout and the Hugging Face cache")
struct DiffusersLayoutTests {
    static let modelIndex = """
    {"_class_name": "KolorsPipeline", "_diffusers_version": "0.30.0.dev0", "force_zeros_for_empty_prompt": false,
     "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["kolors", "ChatGLMModel"],
     "tokenizer": ["kolors", "ChatGLMTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
     "vae": ["diffusers", "AutoencoderKL"]}
    """

    /// A skeleton diffusers folder with small weights in `root`.
    static func makeDiffusersFolder(_ root: String, fp16: Bool = true, fp32: Bool = true) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/unet", withIntermediateDirectories: true)
        try modelIndex.write(toFile: root + "/model_index.json", atomically: true, encoding: .utf8)
        try #"{"_class_name": "UNet2DConditionModel", "in_channels": 4}"#.write(toFile: root + "/unet/config.json", atomically: true, encoding: .utf8)
        let w = Tensor(shape: [2], values: [1.5, -2])
        if fp16 { try SafetensorsWriter.write([("w", w, .f16)], to: root + "/unet/diffusion_pytorch_model.fp16.safetensors") }
        if fp32 { try SafetensorsWriter.write([("w", w, .f32)], to: root + "/unet/diffusion_pytorch_model.safetensors") }
    }

    struct MiniConfig: Decodable { let in_channels: Int; let out_channels: Int? }
    struct NeedsMore: Decodable { let block_out_channels: [Int] }

    @Test("a plain folder: components, configs, variant order")
    func plainFolder() throws {
        let dir = try TemporaryDirectory()
        try Self.makeDiffusersFolder(dir.path)
        let model = try DiffusersModel(dir.path)
        #expect(model.pipelineClass == "KolorsPipeline")
        #expect(model.component("text_encoder")?.className == "ChatGLMModel")
        #expect(model.flag("force_zeros_for_empty_prompt") == false)
        #expect(try model.config("unet", as: MiniConfig.self).in_channels == 4)
        #expect(try model.weightLocation("unet") == .single(dir.path + "/unet/diffusion_pytorch_model.fp16.safetensors"))
        #expect(try model.weightLocation("unet", variant: .full) == .single(dir.path + "/unet/diffusion_pytorch_model.safetensors"))
        do {
            _ = try model.config("unet", as: NeedsMore.self)
            Issue.record("missing key accepted")
        } catch let e as CheckpointError {
            #expect(e.message == "unet/config.json: missing required key 'block_out_channels'")
        }
        #expect(throws: CheckpointError.self) { try model.weightLocation("vae") }
    }

    @Test("pickle weights are refused with the safetensors file to use instead")
    func pickleRefused() throws {
        let dir = try TemporaryDirectory()
        try Self.makeDiffusersFolder(dir.path, fp16: false, fp32: false)
        try Data("not really a pickle".utf8).write(to: URL(fileURLWithPath: dir.path + "/unet/diffusion_pytorch_model.bin"))
        let model = try DiffusersModel(dir.path)
        do {
            _ = try model.weightLocation("unet")
            Issue.record("pickle accepted")
        } catch let e as CheckpointError {
            #expect(e.message.contains("diffusion_pytorch_model.bin is a PyTorch pickle"))
            #expect(e.message.contains("diffusion_pytorch_model.fp16.safetensors"))
        }
    }

    /// The hub cache: snapshots/<rev>/… are symlinks into blobs/, refs/main names the revision.
    static func makeCache(_ hub: String) throws -> String {
        let fm = FileManager.default
        let repo = hub + "/models--Kwai-Kolors--Kolors-diffusers"
        let staging = hub + "/staging"
        try makeDiffusersFolder(staging)
        try fm.createDirectory(atPath: repo + "/blobs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: repo + "/refs", withIntermediateDirectories: true)
        let rev = "7e0e3c8a3e8b9f6d1c2b3a4f5e6d7c8b9a0f1e2d"
        let snap = repo + "/snapshots/" + rev
        for rel in ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors"] {
            let blob = repo + "/blobs/" + UUID().uuidString
            try fm.moveItem(atPath: staging + "/" + rel, toPath: blob)
            let link = snap + "/" + rel
            try fm.createDirectory(atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let depth = rel.split(separator: "/").count + 1
            let relativeBlob = String(repeating: "../", count: depth) + "blobs/" + (blob as NSString).lastPathComponent
            try fm.createSymbolicLink(atPath: link, withDestinationPath: relativeBlob)
        }
        try rev.write(toFile: repo + "/refs/main", atomically: true, encoding: .utf8)
        return snap
    }

    @Test("the Hugging Face cache: cache folder, hub folder and repository id all resolve")
    func hubCache() throws {
        let dir = try TemporaryDirectory()
        let hub = dir.path + "/hf/hub"
        let snap = try Self.makeCache(hub)
        let repo = hub + "/models--Kwai-Kolors--Kolors-diffusers"
        #expect(try ModelLocator.resolve(repo) == snap)
        #expect(try ModelLocator.resolve(hub) == snap)
        #expect(try ModelLocator.resolve("Kwai-Kolors/Kolors-diffusers", environment: ["HF_HOME": dir.path + "/hf", "HOME": dir.path]) == snap)
        #expect(throws: CheckpointError.self) {
            try ModelLocator.resolve("Kwai-Kolors/Kolors-diffusers", environment: ["HOME": dir.path])
        }
        let model = try DiffusersModel(repo)
        let weights = try model.weights("unet")
        #expect(try weights.mapped("w").toFloat32().values == [1.5, -2])
    }

    @Test("a dangling symlink (interrupted download) gets a clear error")
    func danglingSymlink() throws {
        let dir = try TemporaryDirectory()
        let hub = dir.path + "/hub"
        let snap = try Self.makeCache(hub)
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: snap + "/unet/diffusion_pytorch_model.fp16.safetensors")
        try FileManager.default.removeItem(atPath: snap + "/unet/" + target)
        let model = try DiffusersModel(snap)
        do {
            _ = try model.weightLocation("unet")
            Issue.record("dangling link accepted")
        } catch let e as CheckpointError {
            #expect(e.message.contains("dangling symlink"))
        }
    }
}
