import ArgumentParser
import KolorsEngine
import KolorsModels

/// The engine's flags, the same for `generate`, `studio` and the model benchmarks.
struct EngineOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for BLAS and element-wise loops, 1…\(EngineThreads.maximum) (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Compute precision: fp32, bf16 (bf16 operands, float32 sums); auto: bf16 where the CPU multiplies bf16 natively (AVX512-BF16/AMX via oneDNN), else fp32.")
    var precision: PrecisionOption = .auto

    @Option(name: .long, help: "Text encoder weights: fp16 (exact, default), bf16 (rounded to bf16 once and cached on disk, 12.4 GB; with --precision bf16 the products read them directly), int8 (weight-only, half the memory; quantized once and cached) or int8-w8a8 (experimental: int8 weights and activations, integer products on oneDNN; faster, less accurate).")
    var textEncoderPrecision: TextEncoderPrecision = .fp16

    func validate() throws {
        if let threads, !(1...EngineThreads.maximum).contains(threads) {
            throw UsageError("--threads must be between 1 and \(EngineThreads.maximum) (got \(threads))")
        }
    }
}
