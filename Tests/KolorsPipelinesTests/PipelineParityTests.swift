import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import Testing
import KolorsTestSupport

/// End-to-end runs on the tiny checkpoint against diffusers' KolorsPipeline /
/// KolorsImg2ImgPipeline in float32 (Tests/Fixtures/references/pipelines.safetensors):
/// final latents within relative L2 1e-4, 8-bit pixels within 1/255.
@Suite("Pipeline parity with diffusers")
struct PipelineParityTests {
    struct Case: Decodable, CustomTestStringConvertible {
        struct SchedulerSpec: Decodable { let name: String }
        let name: String
        let pipeline: String
        let prompt: OneOrMany
        let negative_prompt: OneOrMany?
        let num_inference_steps: Int
        let guidance_scale: Float
        let seed: UInt64
        let width: Int?
        let height: Int?
        let scheduler: SchedulerSpec
        let num_images_per_prompt: Int
        let strength: Double?
        let image: String?
        var testDescription: String { name }
    }

    enum OneOrMany: Decodable {
        case one(String), many([String])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .one(s) } else { self = .many(try c.decode([String].self)) }
        }
        var list: [String] { switch self { case .one(let s): [s]; case .many(let l): l } }
    }

    struct Manifest: Decodable { let cases: [Case] }

    static let cases: [Case] = {
        let url = URL(fileURLWithPath: Fixtures.path("references/pipelines.json"))
        guard let data = try? Data(contentsOf: url), let m = try? JSONDecoder().decode(Manifest.self, from: data) else { return [] }
        return m.cases
    }()

    static let pipeline: KolorsPipeline? = try? KolorsPipeline(model: try DiffusersModel(Fixtures.tinyKolors), variant: .full)

    func request(for c: Case) throws -> GenerationRequest {
        var r = GenerationRequest(prompts: c.prompt.list)
        r.negativePrompts = c.negative_prompt?.list ?? []
        r.steps = c.num_inference_steps
        r.guidance = c.guidance_scale
        r.seed = c.seed
        r.width = c.width
        r.height = c.height
        r.scheduler = try #require(SchedulerKind(rawValue: c.scheduler.name))
        r.imagesPerPrompt = c.num_images_per_prompt
        if let image = c.image {
            r.initImage = try PNGFile.read(Fixtures.path("references/\(image)")).image
            r.strength = try #require(c.strength)
        }
        return r
    }

    @Test(arguments: cases)
    func matchesDiffusers(_ c: Case) throws {
        let refs = try Fixtures.References("pipelines.safetensors")
        let pipeline = try #require(Self.pipeline)
        let run = try pipeline.prepare(try request(for: c))
        var steps = 0
        while let step = try run.next() {
            steps += 1
            #expect(step.index == steps && step.total == run.totalSteps)
        }
        #expect(try run.next() == nil, "a finished run takes no more steps")
        #expect(steps == (try refs["\(c.name).timesteps"]).count)
        let result = try run.result()
        let latentsError = relativeError(result.latents, try refs["\(c.name).final_latents"])
        #expect(latentsError <= 1e-4, "\(c.name): final latents relative error \(latentsError)")
        let want = try refs["\(c.name).image_uint8"]
        #expect(result.images.count == want.shape[0])
        var worst: Float = 0
        for (i, img) in result.images.enumerated() {
            let plane = img.width * img.height * 3
            #expect(plane == want.count / want.shape[0])
            for k in 0..<min(plane, img.pixels.count) {
                worst = max(worst, abs(Float(img.pixels[k]) - want.pointer[i * plane + k]))
            }
        }
        #expect(worst <= 1, "\(c.name): pixels differ by up to \(worst)/255")
        let pixelsError = relativeError(try #require(result.pixels), try refs["\(c.name).image"])
        #expect(pixelsError <= 1e-4, "\(c.name): float image relative error \(pixelsError)")
    }

    @Test("img2img resizes its input like PIL's Lanczos")
    func img2imgPreprocessing() throws {
        let refs = try Fixtures.References("pipelines.safetensors")
        for name in ["img2img_input_72x56.png", "img2img_input_75x61.png"] {
            let image = try PNGFile.read(Fixtures.path("references/\(name)")).image
            let t = try ImageConversion.preprocess(image)
            let want = try refs["inputs.\(name).preprocessed"]
            #expect(t.shape == want.shape)
            #expect(maxAbsError(t, want) < 1e-6, "\(name): max abs error \(maxAbsError(t, want))")
        }
    }

    @Test("a second generation with the same prompts does not run the text encoder")
    func promptCache() throws {
        let pipeline = try KolorsPipeline(model: try DiffusersModel(Fixtures.tinyKolors), variant: .full)
        var r = GenerationRequest(prompt: "a red apple on a table")
        r.steps = 2
        r.width = 32
        r.height = 32
        #expect(try pipeline.prepare(r).textEncoderRan)
        r.seed = 99
        r.guidance = 7
        r.steps = 3
        #expect(try !pipeline.prepare(r).textEncoderRan)
        #expect(pipeline.prompts.encoderLoads == 1)
    }

    @Test("bad requests get one-line errors")
    func badRequests() throws {
        let pipeline = try #require(Self.pipeline)
        var r = GenerationRequest(prompt: "x")
        r.width = 60
        #expect(throws: GenerationError.self) { try pipeline.validate(r) }
        r.width = 64
        r.steps = 0
        #expect(throws: GenerationError.self) { try pipeline.validate(r) }
        r.steps = 5
        r.guidance = .nan
        #expect(throws: GenerationError.self) { try pipeline.validate(r) }
        r.guidance = 5
        r.negativePrompts = ["a", "b"]
        #expect(throws: GenerationError.self) { try pipeline.validate(r) }
        r.negativePrompts = []
        r.initImage = RGBImage(width: 16, height: 16)
        r.strength = 0.1
        #expect(throws: GenerationError.self) { try pipeline.validate(r) }  // int(5·0.1) = 0 steps
    }

    @Test("cancel stops the loop and throws")
    func cancel() throws {
        let pipeline = try #require(Self.pipeline)
        let token = CancellationToken()
        var r = GenerationRequest(prompt: "x")
        r.steps = 10
        r.width = 32
        r.height = 32
        let run = try pipeline.prepare(r, cancel: token)
        #expect(try run.next()?.index == 1)
        #expect(try run.next()?.index == 2)
        token.cancel()
        #expect(throws: CancellationError.self) { _ = try run.next() }
        #expect(run.completedSteps == 2)
        #expect(throws: CancellationError.self) { _ = try run.decode() }
    }
}
