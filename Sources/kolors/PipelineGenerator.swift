import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore

/// The studio's `ImageGenerator` on the real engine: one `KolorsPipeline`, per-step previews
/// from the predicted clean latent, the real tokenizer for the token counter.
final class PipelineGenerator: ImageGenerator, @unchecked Sendable {
    let pipeline: KolorsPipeline
    let modelDescription: String
    let computePrecision: String?
    let isDemo: Bool
    private let lock = NSLock()

    init(pipeline: KolorsPipeline, description: String, isDemo: Bool, precision: ComputePrecision = .fp32) {
        self.pipeline = pipeline
        self.modelDescription = description
        self.computePrecision = precision.rawValue
        self.isDemo = isDemo
    }

    func countTokens(_ text: String) -> Int? {
        pipeline.prompts.tokenizer.tokenCount(text)
    }

    func generate(_ p: GenerationParameters, cancel: CancellationToken,
                  events: @escaping @Sendable (GenerationEvent) -> Void) throws -> [RGBImage] {
        lock.lock()
        defer { lock.unlock() }
        let r = try GenerationRequest(p)
        let run = try pipeline.prepare(r, cancel: cancel) { events(.loading($0, fraction: nil)) }
        events(.started(totalSteps: run.totalSteps))
        var clock = StepClock()
        while let step = try run.next() {
            let x0 = step.predictedOriginal
            let (h, w) = (x0.shape[2], x0.shape[3])
            let first = Array(UnsafeBufferPointer(start: x0.pointer, count: 4 * h * w))
            events(.step(index: step.index, total: step.total, secondsPerStep: clock.tick(remaining: step.total - step.index).secondsPerStep,
                         preview: LatentPreview.rgb(latent: first, height: h, width: w)))
        }
        let result = try run.result(loading: { events(.loading($0, fraction: nil)) }, decoding: { events(.decoding) })
        events(.finished)
        return result.images
    }
}

/// Where the random-weight demo checkpoint (the project's tiny test model) lives: an
/// environment override, an installed copy, or the source tree the binary was built in.
enum DemoModel {
    static func locate() -> String? {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["KOLORS_DEMO_MODEL"], fm.fileExists(atPath: env + "/model_index.json") {
            return env
        }
        let exe = URL(fileURLWithPath: (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        var dir = exe.deletingLastPathComponent()
        let installed = dir.appendingPathComponent("../share/kolors-studio/demo-model").standardized.path
        if fm.fileExists(atPath: installed + "/model_index.json") { return installed }
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("Tests/Fixtures/tiny-kolors").path
            if fm.fileExists(atPath: candidate + "/model_index.json") { return candidate }
            dir.deleteLastPathComponent()
        }
        return nil
    }
}
