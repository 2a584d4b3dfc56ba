import KolorsStudioCore

/// THE seam between the studio and the engine: makes the `ImageGenerator` for `kolors studio`.
///
/// The pipelines engineer replaces the body: resolve `request.model` (diffusers folder, HF cache
/// folder or repo id; nil = Kolors from the HF cache, else the embedded demo checkpoint), load it
/// while reporting `.loading(what, fraction:)` through `progress`, and return a generator whose
/// `isDemo` is true for the random-weight demo checkpoint. It runs on a background queue.
///
/// Until the pipeline lands it throws, and the studio says on screen that no engine is available
/// (editing, the gallery and parameter reloading still work). It never fakes images.
func makeStudioGenerator(_ request: GeneratorRequest,
                         progress: @escaping @Sendable (GenerationEvent) -> Void) throws -> any ImageGenerator {
    throw EngineNotAvailable()
}

struct EngineNotAvailable: Error, CustomStringConvertible {
    var description: String { "the Kolors engine is not available in this build yet" }
}
