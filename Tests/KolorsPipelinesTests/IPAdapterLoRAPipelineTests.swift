import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import Testing
import KolorsTestSupport

/// End-to-end IP-Adapter-Plus and LoRA runs on the tiny checkpoint against diffusers'
/// KolorsPipeline (`load_ip_adapter` + `set_ip_adapter_scale`, `load_lora_weights` +
/// `set_adapters`), Tests/Fixtures/references/ip_lora.*: final latents within relative L2
/// 1e-4, 8-bit pixels within 1/255.
@Suite("IP-Adapter and LoRA pipelines against diffusers")
struct IPAdapterLoRAPipelineTests {
    struct Case: Decodable, CustomTestStringConvertible {
        struct SchedulerSpec: Decodable { let name: String }
        struct IP: Decodable { let image: String; let scale: Float }
        struct LoRA: Decodable { let file: String; let weight: Float }
        struct CallKwargs: Decodable { let scale: Float }
        let name: String
        let prompt: String
        let negative_prompt: String
        let num_inference_steps: Int
        let guidance_scale: Float
        let seed: UInt64
        let num_images_per_prompt: Int
        let scheduler: SchedulerSpec
        let ip_adapter: IP?
        let loras: [LoRA]?
        let cross_attention_kwargs: CallKwargs?
        var testDescription: String { name }
    }

    struct Manifest: Decodable { let cases: [Case] }

    static let cases: [Case] = {
        let url = URL(fileURLWithPath: Fixtures.path("references/ip_lora.json"))
        guard let data = try? Data(contentsOf: url), let m = try? JSONDecoder().decode(Manifest.self, from: data) else { return [] }
        return m.cases
    }()

    static func request(for c: Case) throws -> GenerationRequest {
        var r = GenerationRequest(prompt: c.prompt)
        r.negativePrompts = [c.negative_prompt]
        r.steps = c.num_inference_steps
        r.guidance = c.guidance_scale
        r.seed = c.seed
        r.scheduler = try #require(SchedulerKind(rawValue: c.scheduler.name))
        r.imagesPerPrompt = c.num_images_per_prompt
        if let ip = c.ip_adapter {
            r.ipAdapter = IPAdapterInput(weights: Fixtures.path("ip-adapter-plus"),
                                         image: try PNGFile.read(Fixtures.path("references/\(ip.image)")).image, scale: ip.scale)
        }
        r.loras = (c.loras ?? []).map { LoRAInput(path: Fixtures.path($0.file), weight: $0.weight) }
        r.loraScale = c.cross_attention_kwargs?.scale ?? 1
        return r
    }

    /// One pipeline for all cases: switching adapters and LoRAs between runs is part of the test.
    static let pipeline: KolorsPipeline? = try? KolorsPipeline(model: try DiffusersModel(Fixtures.tinyKolors), variant: .full)

    @Test("manifest lists the cases") func manifest() {
        #expect(Self.cases.count == 10)
    }

    @Test(arguments: cases)
    func matchesDiffusers(_ c: Case) throws {
        let refs = try Fixtures.References("ip_lora.safetensors")
        let pipeline = try #require(Self.pipeline)
        let result = try pipeline.generate(try Self.request(for: c))
        let err = relativeError(result.latents, try refs["\(c.name).final_latents"])
        #expect(err <= 1e-4, "\(c.name): final latents relative error \(err)")
        let want = try refs["\(c.name).image_uint8"]
        #expect(result.images.count == want.shape[0])
        var worst: Float = 0
        for (i, img) in result.images.enumerated() {
            let plane = img.width * img.height * 3
            for k in 0..<min(plane, img.pixels.count) {
                worst = max(worst, abs(Float(img.pixels[k]) - want.pointer[i * plane + k]))
            }
        }
        #expect(worst <= 1, "\(c.name): pixels differ by up to \(worst)/255")
    }

    @Test("a plain run after IP-Adapter and LoRA runs is the plain image again")
    func switchesBack() throws {
        let refs = try Fixtures.References("pipelines.safetensors")
        let pipeline = try #require(Self.pipeline)
        var r = try Self.request(for: try #require(Self.cases.first { $0.ip_adapter != nil && !($0.loras ?? []).isEmpty } ?? Self.cases.first))
        _ = try pipeline.generate(r)
        var lora = r
        lora.ipAdapter = nil
        lora.loras = [LoRAInput(path: Fixtures.path("loras/kohya_lora.safetensors"), weight: 1)]
        _ = try pipeline.generate(lora)
        r = GenerationRequest(prompt: "A photo of an astronaut riding a horse on the moon, highly detailed")
        r.negativePrompts = [""]
        r.steps = 5
        let plain = try pipeline.generate(r)
        #expect(relativeError(plain.latents, try refs["t2i-euler.final_latents"]) <= 1e-4)
    }

    @Test("runs with and without an adapter at the same time on one pipeline do not disturb each other")
    func concurrentRuns() throws {
        let refs = try Fixtures.References("ip_lora.safetensors")
        let pipeline = try KolorsPipeline(model: try DiffusersModel(Fixtures.tinyKolors), variant: .full)
        let names = ["ip-euler-s1.0", "lora-peft", "ip-dpm-karras-s0.5", "lora-kohya"]
        let requests = try names.map { n in try Self.request(for: try #require(Self.cases.first { $0.name == n })) }
        let errors = Tensor.full([names.count], .infinity)  // one slot per run (Sendable storage)
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            if let latents = try? pipeline.generate(requests[i]).latents, let want = try? refs["\(names[i]).final_latents"] {
                errors.pointer[i] = Float(relativeError(latents, want))
            }
        }
        for (n, e) in zip(names, errors.values) { #expect(e <= 1e-4, "\(n): \(e)") }
    }

    @Test("bad IP-Adapter and LoRA inputs get one-line errors")
    func badInputs() throws {
        let pipeline = try #require(Self.pipeline)
        var r = GenerationRequest(prompt: "x")
        r.steps = 1
        r.width = 32
        r.height = 32
        r.loras = [LoRAInput(path: Fixtures.path("loras/peft_lora.safetensors"), weight: .nan)]
        #expect(throws: GenerationError.self) { try pipeline.validate(r) }
        r.loras = [LoRAInput(path: Fixtures.path("tiny-kolors/vae/diffusion_pytorch_model.safetensors"))]
        do {
            _ = try pipeline.generate(r)
            Issue.record("a VAE was accepted as a LoRA")
        } catch let e as GenerationError {
            #expect(e.message.contains("diffusion_pytorch_model.safetensors"), "\(e.message)")
        }
        r.loras = []
        r.ipAdapter = IPAdapterInput(weights: Fixtures.path("ip-adapter-plus"), imageEncoder: Fixtures.path("tiny-kolors/vae"),
                                     image: RGBImage(width: 8, height: 8))
        #expect(throws: (any Error).self) { _ = try pipeline.generate(r) }
    }
}
