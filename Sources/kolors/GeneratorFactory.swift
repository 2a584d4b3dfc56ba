import Foundation
import KolorsEngine
import KolorsModels
import KolorsPipelines
import KolorsStudioCore

/// The seam between the studio and the engine: makes the `ImageGenerator` for `kolors studio`.
/// `--model` wins; without it Kwai-Kolors/Kolors-diffusers from the Hugging Face cache; without
/// that the embedded demo checkpoint (the project's tiny random-weight model), flagged as a demo
/// so the studio says so on screen. Runs on a background queue.
func makeStudioGenerator(_ request: GeneratorRequest, textEncoderPrecision: TextEncoderPrecision = .fp16,
                         precision: ComputePrecision = .fp32, precisionLabel: String? = nil,
                         progress: @escaping @Sendable (GenerationEvent) -> Void) throws -> any ImageGenerator {
    EngineThreads.configure(request.threads)
    let spec: String
    var isDemo = false
    if let model = request.model {
        spec = model
    } else if let cached = try? ModelLocator.resolve(ModelLocator.defaultRepository) {
        spec = cached
    } else if let demo = DemoModel.locate() {
        spec = demo
        isDemo = true
    } else {
        throw CheckpointError("no Kolors checkpoint found: download \(ModelLocator.defaultRepository) and start with --model DIR")
    }
    progress(.loading("checkpoint", fraction: nil))
    let model = try DiffusersModel(spec)
    let pipeline = try KolorsPipeline(model: model, textEncoderPrecision: textEncoderPrecision, backend: precision.backend)
    let description = isDemo
        ? "demo checkpoint (random weights)"
        : "\(GenerateCommand.displayName(of: model.root)) (\(model.root))"
    return PipelineGenerator(pipeline: pipeline, description: description + " · \(precisionLabel ?? precision.rawValue)", isDemo: isDemo,
                             precision: precision)
}
