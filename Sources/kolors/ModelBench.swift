import ArgumentParser
import Foundation
import COpenBLAS
import CKolorsKernels
import KolorsEngine
import KolorsModels
import KolorsPipelines

/// Options every model benchmark shares.
struct ModelBenchOptions: ParsableArguments {
    @Option(name: .long, help: "A Kolors-diffusers folder, a Hugging Face cache folder, or a repository id.")
    var model: String

    @Option(name: .long, help: "Image width in pixels.")
    var width: Int = 1024

    @Option(name: .long, help: "Image height in pixels.")
    var height: Int = 1024

    @Option(name: .long, help: "Batch (2 = one image with classifier-free guidance).")
    var batch: Int = 2

    @Option(name: .long, help: "Timed repetitions (the median is reported) after one warm-up.")
    var repeats: Int = 3

    @OptionGroup var engine: EngineOptions

    @Option(name: .long, help: "Where linear layers, convolutions and attention run: auto (the precision's default), openblas, or onednn (its primitives: UNet and VAE weights prepared once in oneDNN's layout, the text encoder's converted block by block; for A/B runs).")
    var backend: BenchBackend = .auto

    /// The backend the options select.
    func makeBackend() -> ComputeBackend {
        let p = engine.precision.resolved
        switch backend {
        case .auto: return p.backend
        case .openblas: return OpenBLASBackend(bf16Operands: p == .bf16)
        case .onednn: return OneDNNBackend(p == .bf16 ? .bf16 : .f32)
        }
    }

    func validate() throws {
        guard width > 0, height > 0, width % 8 == 0, height % 8 == 0 else { throw ValidationError("--width/--height must be positive multiples of 8") }
        guard batch >= 1, repeats >= 1 else { throw ValidationError("--batch and --repeats must be at least 1") }
    }
}

enum BenchBackend: String, ExpressibleByArgument, CaseIterable {
    case auto, openblas, onednn
}

/// Prints the backend's name, and for oneDNN how many operations fell back to OpenBLAS.
func printBackend(_ backend: ComputeBackend) {
    var line = "backend: \(backend.name)"
    if let o = backend as? OneDNNBackend {
        let f = o.fallbacks
        line += "; operations oneDNN did not run: \(f.count)" + (f.last.map { " (last: \($0))" } ?? "")
    }
    print(line)
}

/// Peak resident set size of this process, in MiB.
func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Resident memory now (/proc/self/statm; 0 where it cannot be read).
func currentRSSMiB() -> Double {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
          let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

/// Times `body` once to warm up and `repeats` times more; prints and returns the median.
func measure(repeats: Int, label: String, _ body: () throws -> Void) rethrows -> (median: Double, all: [Double]) {
    var times: [Double] = []
    OpProfiler.shared.enabled = true
    defer { OpProfiler.shared.enabled = false }
    for r in 0...repeats {
        if r == 1 { OpProfiler.shared.reset() }  // the breakdown covers the timed runs only
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        if r > 0 { times.append(dt) }
        let rss = String(format: "RSS after it %.0f MiB, peak so far %.0f MiB", currentRSSMiB(), peakRSSMiB())
        FileHandle.standardError.write(Data("\(label) \(r == 0 ? "warm-up" : "run \(r)"): \(String(format: "%.2f", dt)) s (\(rss))\n".utf8))
    }
    return (times.sorted()[times.count / 2], times)
}

/// Time per operation kind over the timed runs, as a share of the total.
func printBreakdown(repeats: Int, total: Double) {
    print("time per operation (mean per run):")
    for row in OpProfiler.shared.report {
        let per = row.seconds / Double(max(repeats, 1))
        print("  " + row.kind.padding(toLength: 16, withPad: " ", startingAt: 0)
              + String(format: "%8.2f s  %5.1f%%  %6d calls", per, 100 * per / max(total, 1e-9), row.calls / max(repeats, 1)))
    }
}

/// The compute ceiling measured in this process: GFLOP/s of a 4096×1280×1280 product (median
/// of 5) in the given precision — cblas_sgemm for fp32 (and for bf16 without bf16 kernels, whose
/// products then run on it), oneDNN's bf16 matmul where it runs.
func measuredPeakGFLOPs(_ precision: ComputePrecision) -> Double {
    let (m, n, k) = (4096, 1280, 1280)
    let a = Tensor(shape: [m, k], values: (0..<(m * k)).map { Float($0 % 97) * 0.01 })
    let w = Tensor(shape: [n, k], values: (0..<(n * k)).map { Float($0 % 89) * 0.01 })
    let c = Tensor(shape: [m, n], zeroed: false)
    let bf16 = precision == .bf16 && OneDNNCompute.bfloat16.isAvailable
    let weight = Weight(w)
    var times: [Double] = []
    for r in 0..<6 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        if bf16 {
            _ = try? OneDNNCompute.bfloat16.linear(a, weight: weight, bias: nil)  // weight prepared in round 0
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a.pointer, Int32(k),
                        w.pointer, Int32(k), 0, c.pointer, Int32(n))
        }
        if r > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
    }
    return 2.0 * Double(m * n * k) / times.sorted()[times.count / 2] / 1e9
}

/// Wall time between a model's probe points (the end of each block), summed over the timed runs.
final class BlockTimer: @unchecked Sendable {
    private(set) var order: [String] = []
    private var seconds: [String: Double] = [:]
    private var last = DispatchTime.now().uptimeNanoseconds
    var enabled = false

    func start() { last = DispatchTime.now().uptimeNanoseconds }

    func mark(_ name: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        guard enabled else { return }
        if seconds[name] == nil { order.append(name) }
        seconds[name, default: 0] += Double(now - last) / 1e9
    }

    func print(repeats: Int, total: Double) {
        Swift.print("time per block (mean per run, from the previous block's end):")
        for name in order {
            let per = (seconds[name] ?? 0) / Double(max(repeats, 1))
            Swift.print("  " + name.padding(toLength: 16, withPad: " ", startingAt: 0)
                        + String(format: "%8.2f s  %5.1f%%", per, 100 * per / max(total, 1e-9)))
        }
    }
}

func printJSONLine(_ fields: [(String, Any)]) {
    let body = fields.map { key, value -> String in
        switch value {
        case let s as String: return "\"\(key)\":\"\(s)\""
        case let d as Double: return "\"\(key)\":\(String(format: "%.4f", d))"
        default: return "\"\(key)\":\(value)"
        }
    }.joined(separator: ",")
    print("{\(body)}")
}

/// `kolors bench unet`: one UNet forward at the given size and batch.
struct UNetBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unet", abstract: "Time one UNet forward pass.")
    @OptionGroup var options: ModelBenchOptions
    @Flag(name: .long, help: """
        Time a denoising step as the pipeline runs it: the conditioning (encoder_hid_proj, the text's \
        cross-attention K/V) prepared once before the timed calls (diffusers recomputes it every step). \
        Without it: a whole forward, as diffusers runs one.
        """)
    var keepConditioning = false

    @Flag(name: .long, help: "EXPERIMENTAL: the transformer blocks' linear layers as int8 weights × 7-bit activations on oneDNN (W8A8).")
    var w8a8 = false

    func run() throws {
        EngineThreads.configure(options.engine.threads)
        let backend = options.makeBackend()
        let model = try DiffusersModel(options.model)
        let unet = try UNet2DConditionModel.load(from: model, w8a8: w8a8, backend: backend)
        let c = unet.config
        let (h, w, b) = (options.height / 8, options.width / 8, options.batch)
        var g = SystemRandomNumberGenerator()
        func random(_ shape: [Int]) -> Tensor {
            let t = Tensor(shape: shape, zeroed: false)
            for i in 0..<t.count { t.pointer[i] = Float.random(in: -1...1, using: &g) }
            return t
        }
        let sample = random([b, c.inChannels, h, w])
        let context = random([b, 256, c.encoderHidDim ?? c.contextDim])
        let pooled = random([b, (c.projectionClassEmbeddingsInputDim ?? 0) - 6 * (c.additionTimeEmbedDim ?? 0)])
        let ids = Tensor(shape: [b, 6], values: Array(repeating: [Float(options.height), Float(options.width), 0, 0,
                                                                 Float(options.height), Float(options.width)], count: b).flatMap { $0 })
        let blocks = BlockTimer()
        var run = 0
        // kept: the conditioning prepared once, as a run's steps share it; else prepared in every
        // timed call, as diffusers recomputes it every step
        let kept = keepConditioning
            ? try unet.prepare(text: context, textEmbeds: pooled, timeIds: ids) : nil
        let (median, _) = try measure(repeats: options.repeats, label: "unet") {
            blocks.enabled = run > 0
            run += 1
            blocks.start()
            let conditioning = try kept ?? unet.prepare(text: context, textEmbeds: pooled, timeIds: ids)
            _ = try unet(sample, timesteps: [500], conditioning: conditioning, probe: { name, _ in blocks.mark(name) })
            blocks.mark("conv_out")
        }
        let flops = UNetFLOPs.estimate(config: c, height: h, width: w, batch: b, contextLength: 256,
                                       keptConditioning: keepConditioning)
        if let kept {
            print(String(format: "cross-attention K/V prepared once: %d pairs, %.0f MiB", kept.pairs,
                         Double(kept.bytes) / 1_048_576))
        }
        printBreakdown(repeats: options.repeats, total: median)
        blocks.print(repeats: options.repeats, total: median)
        let peak = measuredPeakGFLOPs(options.engine.precision.resolved)
        print(String(format: "ceiling in this process (4096×1280×1280 product): %.1f GFLOP/s; the UNet ran at %.0f%% of it",
                     peak, 100 * flops / median / 1e9 / peak))
        print(String(format: "UNet %d×%d batch %d: %.2f s median, %.1f GFLOP/s (%.2f TFLOP), peak RSS %.0f MiB",
                     options.width, options.height, b, median, flops / median / 1e9, flops / 1e12, peakRSSMiB()))
        print("precision: \(options.engine.precision.summary)")
        printBackend(backend)
        printJSONLine([("component", "unet"), ("width", options.width), ("height", options.height), ("batch", b),
                       ("precision", options.engine.precision.resolved.rawValue), ("backend", backend.name), ("threads", EngineThreads.count), ("seconds_median", median),
                       ("keep_conditioning", keepConditioning),
                       ("gflops", flops / median / 1e9), ("peak_gflops", peak), ("peak_rss_mib", peakRSSMiB())])
    }
}

/// `kolors bench text-encoder`: one 256-token prompt through ChatGLM3.
struct TextEncoderBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "text-encoder", abstract: "Time ChatGLM3 on one 256-token prompt.")
    @OptionGroup var options: ModelBenchOptions

    func run() throws {
        EngineThreads.configure(options.engine.threads)
        let backend = options.makeBackend()
        let model = try DiffusersModel(options.model)
        let encoder = try ChatGLMModel.load(from: model, precision: options.engine.textEncoderPrecision,
                                            cacheDirectory: Int8WeightCache.defaultDirectory,
                                            backend: backend)
        let cfg = encoder.config
        let ids = (0..<256).map { 2 + ($0 * 7919) % 2000 }
        let (median, _) = try measure(repeats: options.repeats, label: "text-encoder") {
            _ = try encoder.encode(inputIds: [ids], attentionMask: [Array(repeating: 1, count: 256)],
                                   positionIds: [Array(0..<256)])
        }
        let perLayer = 2.0 * 256 * Double(cfg.hiddenSize) * Double(cfg.numAttentionHeads * cfg.kvChannels + 2 * cfg.kvHeads * cfg.kvChannels)
            + 2.0 * 256 * Double(cfg.numAttentionHeads * cfg.kvChannels * cfg.hiddenSize)
            + 2.0 * 256 * Double(cfg.hiddenSize * 3 * cfg.ffnHiddenSize)
            + 4.0 * 256 * 256 * Double(cfg.numAttentionHeads * cfg.kvChannels)
        let flops = perLayer * Double(cfg.numLayers)
        printBreakdown(repeats: options.repeats, total: median)
        let peak = measuredPeakGFLOPs(options.engine.precision.resolved)
        print(String(format: "ChatGLM3 one 256-token prompt: %.2f s median, %.1f GFLOP/s (%.0f%% of the %.1f GFLOP/s measured in this process), peak RSS %.0f MiB",
                     median, flops / median / 1e9, 100 * flops / median / 1e9 / peak, peak, peakRSSMiB()))
        print("precision: \(options.engine.precision.summary)")
        printBackend(backend)
        printJSONLine([("component", "text-encoder"), ("tokens", 256), ("precision", options.engine.precision.resolved.rawValue), ("backend", backend.name),
                       ("weights", options.engine.textEncoderPrecision.rawValue),
                       ("threads", EngineThreads.count), ("seconds_median", median), ("gflops", flops / median / 1e9),
                       ("peak_gflops", peak), ("peak_rss_mib", peakRSSMiB())])
    }
}

/// `kolors bench vae-decode`: decode one latent to an image.
struct VAEDecodeBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vae-decode", abstract: "Time one VAE decode.")
    @OptionGroup var options: ModelBenchOptions

    @Flag(name: .long, help: "Decode in overlapping 512-pixel tiles (diffusers' tiled_decode).")
    var tiling = false

    func run() throws {
        EngineThreads.configure(options.engine.threads)
        let backend = options.makeBackend()
        let model = try DiffusersModel(options.model)
        let vae = try AutoencoderKL.load(from: model, encoder: false, backend: backend)
        let z = Tensor(shape: [1, vae.config.latentChannels, options.height / 8, options.width / 8], zeroed: false)
        var g = SystemRandomNumberGenerator()
        for i in 0..<z.count { z.pointer[i] = Float.random(in: -3...3, using: &g) }
        let (median, _) = try measure(repeats: options.repeats, label: "vae-decode") {
            _ = tiling ? try vae.tiledDecode(z, tileLatent: 64) : try vae.decode(z)
        }
        printBreakdown(repeats: options.repeats, total: median)
        print(String(format: "VAE decode %d×%d: %.2f s median, peak RSS %.0f MiB", options.width, options.height, median, peakRSSMiB()))
        print("precision: \(options.engine.precision.summary)")
        printBackend(backend)
        printJSONLine([("component", "vae-decode"), ("width", options.width), ("height", options.height), ("batch", 1),
                       ("tiling", tiling ? "512px" : "off"),
                       ("precision", options.engine.precision.resolved.rawValue), ("backend", backend.name), ("threads", EngineThreads.count), ("seconds_median", median),
                       ("peak_rss_mib", peakRSSMiB())])
    }
}

/// Multiply-add count of a UNet forward (2 FLOPs per MAC), from its config; with
/// `keptConditioning`, without the cross-attention K/V projections a kept cache skips.
enum UNetFLOPs {
    static func estimate(config c: UNet2DConditionConfig, height: Int, width: Int, batch: Int, contextLength: Int,
                         keptConditioning: Bool = false) -> Double {
        var macs = 0.0
        let ch = c.blockOutChannels
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ pixels: Int) { macs += Double(cin * cout * k * k * pixels) }
        func resnet(_ cin: Int, _ cout: Int, _ px: Int) {
            conv(cin, cout, 3, px); conv(cout, cout, 3, px)
            if cin != cout { conv(cin, cout, 1, px) }
        }
        func transformer(_ C: Int, _ depth: Int, _ px: Int) {
            let ctx = c.contextDim
            macs += Double(2 * C * C * px)  // proj in/out
            for _ in 0..<depth {
                macs += Double(4 * C * C * px) + 2 * Double(px * px * C)  // self-attention
                macs += Double(2 * C * C * px) + 2 * Double(px * contextLength * C)  // cross-attention: q, out, QKᵀ, PV
                if !keptConditioning { macs += Double(2 * C * ctx * contextLength) }  // its K and V of the text
                macs += Double(8 * C * C * px + 4 * C * C * px)  // GEGLU feed-forward
            }
        }
        let depth = c.transformerDepthPerLevel
        var px = height * width
        conv(c.inChannels, ch[0], 3, px)
        var inC = ch[0]
        for i in 0..<ch.count {
            for j in 0..<c.layersPerLevel[i] {
                resnet(j == 0 ? inC : ch[i], ch[i], px)
                if c.downBlockTypes[i] == "CrossAttnDownBlock2D" { transformer(ch[i], depth[i], px) }
            }
            inC = ch[i]
            if i < ch.count - 1 { conv(ch[i], ch[i], 3, px / 4); px /= 4 }
        }
        resnet(ch.last!, ch.last!, px); transformer(ch.last!, depth.last!, px); resnet(ch.last!, ch.last!, px)
        let rch = Array(ch.reversed()), rdepth = Array(depth.reversed())
        var prev = rch[0]
        for i in 0..<ch.count {
            let out = rch[i], input = rch[min(i + 1, ch.count - 1)]
            let n = c.layersPerLevel.reversed()[i] + 1
            for j in 0..<n {
                let skip = j == n - 1 ? input : out
                resnet((j == 0 ? prev : out) + skip, out, px)
                if c.upBlockTypes[i] == "CrossAttnUpBlock2D" { transformer(out, rdepth[i], px) }
            }
            prev = out
            if i < ch.count - 1 { px *= 4; conv(out, out, 3, px) }
        }
        conv(ch[0], c.outChannels, 3, px)
        return 2 * macs * Double(batch)
    }
}

/// `kolors bench pipeline`: a whole txt2img, then the same prompt again (the text encoder is
/// skipped the second time: embeddings are cached).
struct PipelineBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pipeline",
                                                    abstract: "Time a whole txt2img twice with the same prompt (the second skips the text encoder), or once with --runs 1.")
    @OptionGroup var options: ModelBenchOptions

    @Option(name: .long, help: "Generations with the same prompt: 2 (default; the second skips the text encoder) or 1.")
    var runs: Int = 2

    func validate() throws {
        guard (1...2).contains(runs) else { throw ValidationError("--runs must be 1 or 2") }
    }

    @Option(name: .long, help: "Denoising steps.")
    var steps: Int = 25

    @Option(name: .long, help: "Scheduler.")
    var scheduler: String = SchedulerKind.euler.rawValue

    @Option(name: .long, help: "Step caching, an approximation: off, or deep:N (DeepCache: the whole UNet every N-th step, its shallow path in between).")
    var cache: String = "off"

    func run() throws {
        EngineThreads.configure(options.engine.threads)
        let backend = options.makeBackend()
        let pipeline = try KolorsPipeline(model: try DiffusersModel(options.model),
                                          textEncoderPrecision: options.engine.textEncoderPrecision,
                                          backend: backend)
        var request = GenerationRequest(prompt: "a lighthouse at dusk, 黄昏的灯塔, highly detailed")
        request.width = options.width
        request.height = options.height
        request.steps = steps
        request.scheduler = try SchedulerKind(name: scheduler)
        request.deepCacheInterval = try GenerationRequest.parseStepCache(cache)
        var timed: [(seconds: Double, timings: [String: Double])] = []
        for run in 1...runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let generation = try pipeline.prepare(request)
            var clock = StepClock()
            while let step = try generation.next() {
                let spi = clock.tick(remaining: 0).secondsPerStep
                FileHandle.standardError.write(Data("run \(run) step \(step.index)/\(step.total) \(String(format: "%.2f", spi)) s/it\n".utf8))
            }
            let result = try generation.result()
            timed.append((Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, result.timings))
            request.seed += 1
        }
        for (i, r) in timed.enumerated() {
            let parts = r.timings.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", $0.value)) s" }
            print(String(format: "run %d: %.1f s (", i + 1, r.seconds) + parts.joined(separator: ", ") + ")")
        }
        if let n = request.deepCacheInterval {
            let full = (steps + n - 1) / n
            print("DeepCache deep:\(n) (an approximation): \(full) full and \(steps - full) shallow UNet passes per run")
        }
        print(String(format: "peak RSS %.0f MiB; text encoder loads: %d", peakRSSMiB(), pipeline.prompts.encoderLoads))
        print("precision: \(options.engine.precision.summary)")
        printBackend(backend)
        var fields: [(String, Any)] = [
            ("component", "pipeline"), ("width", options.width), ("height", options.height), ("steps", steps),
            ("precision", options.engine.precision.resolved.rawValue), ("backend", backend.name), ("text_encoder", options.engine.textEncoderPrecision.rawValue),
            ("cache", cache), ("threads", EngineThreads.count), ("seconds_first", timed[0].seconds)]
        if timed.count > 1 { fields.append(("seconds_second", timed[1].seconds)) }
        fields += [("text_encoder_loads", pipeline.prompts.encoderLoads), ("peak_rss_mib", peakRSSMiB())]
        printJSONLine(fields)
    }
}
