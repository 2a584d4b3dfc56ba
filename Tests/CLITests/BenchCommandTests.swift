import Foundation
import Testing
import KolorsTestSupport

/// `kolors bench` on the tiny checkpoint: the commands run, print their breakdowns, and end in
/// one JSON line with the fields BENCHMARKS.md and scripts/bench/compare read. (Timings of the
/// tiny model mean nothing; these tests check the commands, not the speed.)
@Suite("kolors bench", .enabled(if: CLI.available))
struct BenchCommandTests {
    func lastJSON(_ stdout: String) throws -> [String: Any] {
        let line = try #require(stdout.split(separator: "\n").last, "no output")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
    }

    @Test func unet() throws {
        let r = try CLI.run(["bench", "unet", "--model", CLI.tinyKolors, "--width", "64", "--height", "64", "--repeats", "1",
                             "--precision", "fp32"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("time per operation") && r.stdout.contains("time per block"))
        for block in ["down_blocks.0", "mid_block", "up_blocks.2", "conv_out"] { #expect(r.stdout.contains(block)) }
        let json = try lastJSON(r.stdout)
        #expect(json["component"] as? String == "unet" && json["precision"] as? String == "fp32")
        #expect(json["batch"] as? Int == 2 && json["width"] as? Int == 64)
        for key in ["seconds_median", "gflops", "peak_gflops", "peak_rss_mib"] {
            #expect((json[key] as? Double ?? 0) > 0, "\(key) in \(json)")
        }
        #expect(json["keep_conditioning"] as? Bool == false)
    }

    @Test("--keep-conditioning times a step as the pipeline runs it: the conditioning prepared once")
    func unetKeepConditioning() throws {
        let r = try CLI.run(["bench", "unet", "--model", CLI.tinyKolors, "--width", "64", "--height", "64", "--repeats", "1",
                             "--precision", "fp32", "--keep-conditioning"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("cross-attention K/V prepared once: 17 pairs"), "\(r.stdout)")
        #expect(try lastJSON(r.stdout)["keep_conditioning"] as? Bool == true)
    }

    @Test func textEncoderAndVAE() throws {
        let te = try CLI.run(["bench", "text-encoder", "--model", CLI.tinyKolors, "--repeats", "1", "--precision", "bf16"])
        #expect(te.status == 0, "\(te.stderr)")
        let j = try lastJSON(te.stdout)
        #expect(j["component"] as? String == "text-encoder" && j["precision"] as? String == "bf16" && j["tokens"] as? Int == 256)
        #expect((j["peak_gflops"] as? Double ?? 0) > 0)
        let vae = try CLI.run(["bench", "vae-decode", "--model", CLI.tinyKolors, "--width", "64", "--height", "64",
                               "--repeats", "1", "--tiling"])
        #expect(vae.status == 0, "\(vae.stderr)")
        let v = try lastJSON(vae.stdout)
        #expect(v["component"] as? String == "vae-decode" && v["tiling"] as? String == "512px")
        #expect((v["seconds_median"] as? Double ?? 0) > 0)
    }

    @Test("--backend onednn runs the oneDNN primitives and says whether any operation fell back")
    func oneDNNBackend() throws {
        let r = try CLI.run(["bench", "unet", "--model", CLI.tinyKolors, "--width", "64", "--height", "64", "--repeats", "1",
                             "--precision", "fp32", "--backend", "onednn"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("backend: f32-onednn; operations oneDNN did not run: 0"), "\(r.stdout)")
        #expect(try lastJSON(r.stdout)["backend"] as? String == "f32-onednn")
        let plain = try CLI.run(["bench", "unet", "--model", CLI.tinyKolors, "--width", "64", "--height", "64", "--repeats", "1",
                                 "--precision", "fp32", "--backend", "openblas"])
        #expect(try lastJSON(plain.stdout)["backend"] as? String == "fp32-openblas")
    }

    @Test("bench pipeline: the second generation skips the text encoder; --runs 1 times one")
    func pipeline() throws {
        let r = try CLI.run(["bench", "pipeline", "--model", CLI.tinyKolors, "--width", "64", "--height", "64", "--steps", "2",
                             "--precision", "fp32"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try lastJSON(r.stdout)
        #expect(j["component"] as? String == "pipeline" && j["steps"] as? Int == 2)
        #expect(j["text_encoder_loads"] as? Int == 1, "\(j)")
        #expect((j["seconds_first"] as? Double ?? 0) > 0 && (j["seconds_second"] as? Double ?? 0) > 0)
        #expect(r.stdout.contains("run 1:") && r.stdout.contains("run 2:"))
        let once = try CLI.run(["bench", "pipeline", "--model", CLI.tinyKolors, "--width", "64", "--height", "64", "--steps", "1",
                                "--precision", "fp32", "--runs", "1"])
        #expect(once.status == 0, "\(once.stderr)")
        let o = try lastJSON(once.stdout)
        #expect(o["seconds_second"] == nil && (o["seconds_first"] as? Double ?? 0) > 0 && !once.stdout.contains("run 2:"))
        let bad = try CLI.run(["bench", "pipeline", "--model", CLI.tinyKolors, "--runs", "3"])
        #expect(bad.status != 0 && bad.stderr.contains("--runs must be 1 or 2"), "\(bad.stderr)")
        let cached = try CLI.run(["bench", "pipeline", "--model", CLI.tinyKolors, "--width", "64", "--height", "64", "--steps", "5",
                                  "--precision", "fp32", "--runs", "1", "--cache", "deep:3"])
        #expect(cached.status == 0, "\(cached.stderr)")
        #expect(try lastJSON(cached.stdout)["cache"] as? String == "deep:3")
        #expect(cached.stdout.contains("DeepCache deep:3 (an approximation): 2 full and 3 shallow UNet passes per run"), "\(cached.stdout)")
        let badCache = try CLI.run(["bench", "pipeline", "--model", CLI.tinyKolors, "--cache", "deep:1"])
        #expect(badCache.status != 0 && badCache.stderr.contains("--cache must be off or deep:N"), "\(badCache.stderr)")
    }

    @Test("bad sizes are refused in one line")
    func validation() throws {
        let r = try CLI.run(["bench", "unet", "--model", CLI.tinyKolors, "--width", "63"])
        #expect(r.status != 0 && r.stderr.contains("multiples of 8"), "\(r.stderr)")
    }
}
