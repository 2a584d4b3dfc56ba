import ArgumentParser
import COpenBLAS
import Foundation
import KolorsEngine

/// `kolors bench …`: speed measurements (commands, never timed tests).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the engine's speed on this machine.",
        subcommands: [KernelsBench.self, UNetBench.self, TextEncoderBench.self, VAEDecodeBench.self, PipelineBench.self]
    )
}

/// GFLOP/s of the engine's heavy operations at real Kolors shapes, next to plain sgemm.
struct KernelsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "GFLOP/s of linear, conv2d and attention at Kolors shapes, next to plain sgemm in the same run."
    )

    @Option(name: .long, help: "Threads for BLAS and element-wise loops (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Timed repetitions per case (the median is reported).")
    var repeats: Int = 3

    @Flag(name: .long, help: "Smaller shapes, for a quick check.")
    var quick = false

    struct Case {
        let name: String
        let flops: Double
        let run: () -> Void
    }

    func validate() throws {
        if let threads, !(1...EngineThreads.maximum).contains(threads) {
            throw ValidationError("--threads must be between 1 and \(EngineThreads.maximum) (got \(threads))")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    }

    func run() throws {
        EngineThreads.configure(threads)
        let backend = OpenBLASBackend()
        let s = quick ? 4 : 1  // shrink factor for token counts
        var rng = SystemRandomNumberGenerator()
        func random(_ shape: [Int]) -> Tensor {
            let t = Tensor(shape: shape, zeroed: false)
            for i in 0..<t.count { t.pointer[i] = Float.random(in: -1...1, using: &rng) }
            return t
        }
        func halfWeight(_ shape: [Int]) throws -> Weight {
            let path = NSTemporaryDirectory() + "kolors-bench-\(getpid()).safetensors"
            defer { unlink(path) }
            try SafetensorsWriter.write([("w", random(shape), .f16)], to: path)
            return Weight(mapped: try SafetensorsFile(path: path).mapped("w"))
        }

        var cases: [Case] = []
        // Plain sgemm at a large square-ish size: the ceiling the others are compared with.
        let (gm, gn, gk) = (4096 / s, 1280, 1280)
        let ga = random([gm, gk]), gb = random([gk, gn])
        let gc = Tensor(shape: [gm, gn], zeroed: false)
        cases.append(Case(name: "sgemm \(gm)×\(gn)×\(gk) (reference)", flops: 2.0 * Double(gm * gn * gk)) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(gm), Int32(gn), Int32(gk), 1, ga.pointer, Int32(gk),
                        gb.pointer, Int32(gn), 0, gc.pointer, Int32(gn))
        })
        // UNet linear layers: 64×64 tokens (1024² image, level 1), CFG batch 2.
        let tokens1 = 2 * 4096 / s
        let x640 = random([tokens1, 640]), w640 = Weight(random([640, 640]))
        cases.append(Case(name: "linear \(tokens1)×640→640 fp32 weights", flops: 2.0 * Double(tokens1 * 640 * 640)) {
            _ = backend.linear(x640, weight: w640, bias: nil)
        })
        let tokens2 = 2 * 1024 / s
        let x1280 = random([tokens2, 1280])
        let geglu16 = try halfWeight([10240, 1280])
        cases.append(Case(name: "linear \(tokens2)×1280→10240 fp16 mapped (GEGLU)", flops: 2.0 * Double(tokens2 * 1280 * 10240)) {
            _ = backend.linear(x1280, weight: geglu16, bias: nil)
        })
        // ChatGLM3 MLP up-projection on one 256-token prompt, fp16 weights mapped.
        let xg = random([256, 4096]), wg = try halfWeight([27392 / s, 4096])
        cases.append(Case(name: "linear 256×4096→\(27392 / s) fp16 mapped (ChatGLM MLP)", flops: 2.0 * Double(256 * 4096 * 27392 / s)) {
            _ = backend.linear(xg, weight: wg, bias: nil)
        })
        // Convolutions: level 0 and level 2 of the UNet at 1024².
        let side0 = 128 / (quick ? 2 : 1)
        let c0 = random([2, 320, side0, side0]), k0 = Weight(random([320, 320, 3, 3]))
        cases.append(Case(name: "conv3x3 2×320×\(side0)² → 320", flops: 2.0 * Double(2 * 320 * 320 * 9 * side0 * side0)) {
            _ = backend.conv2d(c0, weight: k0, bias: nil, stride: 1, padding: .symmetric(1))
        })
        let c2 = random([2, 1280, 32, 32]), k2 = Weight(random([1280, 1280, 3, 3]))
        cases.append(Case(name: "conv3x3 2×1280×32² → 1280", flops: 2.0 * Double(2 * 1280 * 1280 * 9 * 1024)) {
            _ = backend.conv2d(c2, weight: k2, bias: nil, stride: 1, padding: .symmetric(1))
        })
        // VAE decoder convolutions at a 512² image: wide and shallow, then narrow and large.
        let v1 = random([1, 512, 64, 64]), kv1 = Weight(random([512, 512, 3, 3]))
        cases.append(Case(name: "conv3x3 1×512×64² → 512 (VAE)", flops: 2.0 * Double(512 * 512 * 9 * 64 * 64)) {
            _ = backend.conv2d(v1, weight: kv1, bias: nil, stride: 1, padding: .symmetric(1))
        })
        let side3 = 512 / (quick ? 2 : 1)
        let v3 = random([1, 128, side3, side3]), kv3 = Weight(random([128, 128, 3, 3]))
        cases.append(Case(name: "conv3x3 1×128×\(side3)² → 128 (VAE)", flops: 2.0 * Double(128 * 128 * 9 * side3 * side3)) {
            _ = backend.conv2d(v3, weight: kv3, bias: nil, stride: 1, padding: .symmetric(1))
        })
        // Attention: 4096-token self-attention with 10 heads × 64 (level 1 at 1024²), batch 2,
        // and the matching cross-attention to 256 text tokens.
        let lq = 4096 / s
        let q = random([2, lq, 640]), k = random([2, lq, 640]), v = random([2, lq, 640])
        cases.append(Case(name: "self-attention 2×\(lq) tokens, 10 heads × 64", flops: 4.0 * Double(2 * 10 * lq * lq * 64)) {
            _ = backend.attention(q: q, k: k, v: v, heads: 10, kvHeads: 10, scale: 0.125, mask: nil)
        })
        let kc = random([2, 256, 640]), vc = random([2, 256, 640])
        cases.append(Case(name: "cross-attention 2×\(lq) → 256 tokens, 10 heads", flops: 4.0 * Double(2 * 10 * lq * 256 * 64)) {
            _ = backend.attention(q: q, k: kc, v: vc, heads: 10, kvHeads: 10, scale: 0.125, mask: nil)
        })

        print("threads \(EngineThreads.count), OpenBLAS \(String(cString: openblas_get_corename())), median of \(repeats) after a warm-up")
        print("case".padding(toLength: 52, withPad: " ", startingAt: 0) + "   seconds    GFLOP/s   of sgemm")
        var peak = 0.0
        for c in cases {
            c.run()  // warm-up
            var times: [Double] = []
            for _ in 0..<max(1, repeats) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                c.run()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            let median = times.sorted()[times.count / 2]
            let gflops = c.flops / median / 1e9
            if peak == 0 { peak = gflops }
            print(c.name.padding(toLength: 52, withPad: " ", startingAt: 0)
                  + String(format: " %9.4f  %9.1f   %6.0f%%", median, gflops, 100 * gflops / peak))
        }
    }
}
