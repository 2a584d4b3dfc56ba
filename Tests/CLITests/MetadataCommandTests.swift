import Foundation
import KolorsImageIO
import KolorsPipelines
import Testing
import KolorsTestSupport

/// `kolors metadata` on PNGs written by us and by other tools (made here, byte by byte).
@Suite("kolors metadata", .enabled(if: CLI.available))
struct MetadataCommandTests {
    static func write(_ dir: TemporaryDirectory, _ name: String, _ chunks: [[UInt8]]) throws -> String {
        let path = dir.path + "/" + name
        try Data(PNGBytes.png(before: chunks)).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("our record, A1111 text, ComfyUI, NovelAI and InvokeAI chunks are printed; other chunks listed")
    func sources() throws {
        let dir = try TemporaryDirectory()
        let ours = dir.path + "/ours.png"
        var params = GenerationParameters(prompt: "一只猫\nline two", negativePrompt: "blur", seed: 42, scheduler: "dpm++2m")
        params.loras = [.init(path: "/l/ink.safetensors", weight: 0.7, hash: "0123456789ab")]
        try PNGFile.write(RGBImage(width: 8, height: 8), to: ours,
                          texts: ImageMetadata.texts(for: ImageRecord(parameters: params)) + [PNGText(key: "Software", value: "x", kind: .text)])
        let a1111 = try Self.write(dir, "a1111.png", [PNGBytes.text("parameters",
            "castle <lora:ink:0.6>\nNegative prompt: fog\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 9, Size: 512x768, Clip skip: 2")])
        let comfy = try Self.write(dir, "comfy.png", [
            PNGBytes.text("prompt", #"{"3": {"class_type": "KSampler", "inputs": {"seed": 11, "steps": 30, "cfg": 4.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0], "model": ["4", 0]}}, "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "kolors.safetensors"}}, "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216, "batch_size": 1}}, "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["4", 1]}}, "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}}}"#),
            PNGBytes.text("workflow", #"{"nodes": [{"id": 3}, {"id": 4}, {"id": 5}]}"#)])
        let novel = try Self.write(dir, "nai.png", [PNGBytes.text("Software", "NovelAI"), PNGBytes.text("Description", "fox"),
                                                   PNGBytes.text("Comment", #"{"uc": "lowres", "steps": 28, "scale": 5, "seed": 77, "sampler": "k_euler"}"#)])
        let invoke = try Self.write(dir, "invoke.png", [PNGBytes.itxt("invokeai_metadata", #"{"positive_prompt": "a boat", "seed": 5, "model": {"name": "sdxl-base"}}"#)])

        let r = try CLI.run(["metadata", ours, a1111, comfy, novel, invoke])
        #expect(r.status == 0, "\(r.stderr)")
        for needle in ["source: kolors record", "一只猫\\nline two", "scheduler         dpm++2m", "LoRA              /l/ink.safetensors:0.7 (0123456789ab)",
                       "source: A1111 parameters", "prompt            castle", "LoRA              ink:0.6", "Clip skip         2",
                       "Schedule type     Karras",
                       "source: ComfyUI (prompt, workflow)", "seed              11", "prompt            a lighthouse", "size              832x1216",
                       "model             kolors.safetensors", "workflow nodes    3",
                       "source: NovelAI", "negative prompt   lowres", "seed              77", "prompt            fox",
                       "source: InvokeAI", "positive_prompt   a boat", "model             sdxl-base",
                       "other text chunks:", "Software          x"] {
            #expect(r.stdout.contains(needle), "missing '\(needle)' in\n\(r.stdout)")
        }

        let j = try CLI.run(["metadata", "--json", ours, comfy])
        #expect(j.status == 0, "\(j.stderr)")
        let objects = j.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == 2)
        let first = try #require(objects.first ?? nil)
        #expect(first["source"] as? String == "kolors")
        #expect((first["parameters"] as? [String: Any])?["seed"] as? Int == 42)
        let tools = try #require((objects.last ?? nil)?["tools"] as? [[String: Any]])
        #expect(tools.first?["tool"] as? String == "ComfyUI")
    }

    @Test("a PNG without settings, a file that is not a PNG and a missing file: one line each, exit 1; the good file still prints")
    func failures() throws {
        let dir = try TemporaryDirectory()
        let none = try Self.write(dir, "none.png", [PNGBytes.text("Software", "GIMP")])
        let bare = try Self.write(dir, "bare.png", [])
        let text = dir.path + "/t.png"
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: text))
        let good = try Self.write(dir, "good.png", [PNGBytes.text("parameters", "x\nSteps: 3, Sampler: Euler, CFG scale: 2")])
        let broken = try Self.write(dir, "broken.png", [PNGBytes.text("prompt", "{\"3\": [[[")])
        let r = try CLI.run(["metadata", none, bare, text, dir.path + "/missing.png", broken, good])
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines == ["kolors: \(none): no generation settings (text chunks: Software)",
                          "kolors: \(bare): no generation settings (no text chunks)",
                          "kolors: \(text): not a PNG file",
                          "kolors: \(dir.path)/missing.png: no such file",
                          "kolors: \(broken): no generation settings (text chunks: prompt)"], "\(lines)")
        #expect(r.stdout.contains("Steps             3"))
    }

    @Test("settings stored after the image data are found too")
    func textAfterPixels() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/late.png"
        try Data(PNGBytes.png(after: [PNGBytes.text("parameters", "late\nSteps: 4, Sampler: Euler, CFG scale: 3")]))
            .write(to: URL(fileURLWithPath: path))
        let r = try CLI.run(["metadata", path])
        #expect(r.status == 0 && r.stdout.contains("prompt            late"), "\(r.stdout)\(r.stderr)")
    }
}
