import Foundation
import KolorsEngine
import Testing
import KolorsTestSupport

/// Where precision is shown, what `--precision auto` picks is named, with the reason bf16 is off
/// where it is (never a silent fallback).
@Suite("precision is reported", .enabled(if: CLI.available))
struct PrecisionReportTests {
    /// The line every report carries on this machine.
    var expectedAuto: String {
        OneDNNCompute.cpuHasBF16 ? "auto → bf16 on oneDNN's bf16 primitives" : "auto → fp32 (bf16 off: CPU lacks avx512_bf16/amx_bf16)"
    }

    @Test("kolors info names auto's choice and why")
    func info() throws {
        let r = try CLI.run(["info", "--model", CLI.tinyKolors])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("compute  --precision \(expectedAuto)"), "\(r.stdout)")
    }

    @Test("generate --verbose names it; --precision bf16 without bf16 instructions warns that it is emulated")
    func generate() throws {
        let dir = try TemporaryDirectory()
        let common = ["generate", "--model", CLI.tinyKolors, "--prompt", "x", "--steps", "1", "--width", "64", "--height", "64",
                      "--seed", "1"]
        let verbose = try CLI.run(common + ["--verbose", "--precision", "auto", "--output", dir.path + "/a.png"])
        #expect(verbose.status == 0, "\(verbose.stderr)")
        #expect(verbose.stderr.contains("kolors: compute --precision \(expectedAuto); "), "\(verbose.stderr)")
        let bf16 = try CLI.run(common + ["--precision", "bf16", "--output", dir.path + "/b.png"])
        #expect(bf16.status == 0, "\(bf16.stderr)")
        let warned = bf16.stderr.contains("kolors: warning: --precision bf16 runs emulated on float32 BLAS here")
        #expect(warned == !OneDNNCompute.cpuHasBF16, "\(bf16.stderr)")
    }

    @Test("bench names the precision before the backend")
    func bench() throws {
        let r = try CLI.run(["bench", "vae-decode", "--model", CLI.tinyKolors, "--width", "64", "--height", "64", "--repeats", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("precision: \(expectedAuto)"), "\(r.stdout)")
        #expect(r.stdout.contains("backend: " + (OneDNNCompute.cpuHasBF16 ? "bf16-onednn" : "fp32-openblas")), "\(r.stdout)")
    }

    @Test("a value the argument parser cannot read is one line, not the usage text; bench --threads is bounded")
    func malformedValues() throws {
        for args in [["generate", "--model", CLI.tinyKolors, "--prompt", "x", "--seed", "nan"],
                     ["generate", "--model", CLI.tinyKolors, "--prompt", "x", "--threads", "1e38"],
                     ["bench", "unet", "--model", CLI.tinyKolors, "--threads", "1000"]] {
            let r = try CLI.run(args)
            let err = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(r.status != 0 && !err.contains("\n") && err.hasPrefix("Error: "), "\(args): \(err)")
        }
    }
}
