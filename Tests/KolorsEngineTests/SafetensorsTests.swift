import Foundation
@testable import KolorsEngine
import Testing
import KolorsTestSupport

@Suite("safetensors")
struct SafetensorsTests {
    /// A small valid file: three tensors of different dtypes.
    static func sample(in dir: TemporaryDirectory) throws -> String {
        let path = dir.path + "/sample.safetensors"
        let a = Tensor(shape: [3, 4], values: (0..<12).map { Float($0) * 0.5 - 2 })
        let b = Tensor(shape: [5], values: [1, -1, 0.25, 1e4, -3])
        let c = Tensor(shape: [2, 2, 2], values: (0..<8).map { Float($0) })
        try SafetensorsWriter.write([("a", a, .f32), ("b", b, .f16), ("c", c, .bf16)],
                                    metadata: ["format": "pt"], to: path)
        return path
    }

    @Test("round trip of F32, F16 and BF16 tensors through a memory map")
    func roundTrip() throws {
        let dir = try TemporaryDirectory()
        let f = try SafetensorsFile(path: try Self.sample(in: dir))
        #expect(Set(f.names) == ["a", "b", "c"])
        #expect(f.metadata["format"] == "pt")
        #expect(f.info("b")?.dtype == .f16)
        #expect(try f.mapped("a").toFloat32().values == (0..<12).map { Float($0) * 0.5 - 2 })
        #expect(try f.mapped("b").toFloat32().values == [1, -1, 0.25, 10000, -3])
        #expect(try f.mapped("c").toFloat32().values == (0..<8).map { Float($0) })
    }

    func header(_ json: String) -> [UInt8] { Array(json.utf8) }

    func expectRefused(_ json: String, dataSize: Int = 64, mentioning: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try SafetensorsFile.parseHeader(header(json), path: "x.safetensors", dataSize: dataSize)
            Issue.record("accepted: \(json)", sourceLocation: sourceLocation)
        } catch let e as CheckpointError {
            #expect(e.message.contains(mentioning), "message '\(e.message)' should mention '\(mentioning)'",
                    sourceLocation: sourceLocation)
            #expect(e.message.contains("x.safetensors"), sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("hostile headers are refused with the file and tensor named")
    func hostileHeaders() {
        expectRefused(#"{"t":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}}"#, mentioning: "unknown dtype")
        expectRefused(#"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, mentioning: "'t'")
        expectRefused(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, mentioning: "not ordered")
        expectRefused(#"{"t":{"dtype":"F32","shape":[32],"data_offsets":[0,128]}}"#, mentioning: "runs past the end")
        expectRefused(#"{"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, mentioning: "overflows")
        expectRefused(#"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, mentioning: "invalid dimension")
        expectRefused(#"{"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, mentioning: "invalid dimension")
        expectRefused(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                      mentioning: "overlap")
        expectRefused(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
                      mentioning: "twice")
        expectRefused(#"{"t":{"dtype":"F32","shape":[2]}}"#, mentioning: "data_offsets")
        expectRefused(#"{"t":[1,2,3]}"#, mentioning: "not an object")
        expectRefused(#"[1,2]"#, mentioning: "not a JSON object")
        expectRefused(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#, mentioning: "not valid JSON")
        expectRefused(String(repeating: "[", count: 10_000), mentioning: "not valid JSON")
        expectRefused(#"{"__metadata__":{"a":1}}"#, mentioning: "__metadata__")
        expectRefused(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999999]}}"#, mentioning: "not valid JSON")
    }

    @Test("bad files: missing, too short, absurd header length, truncated")
    func badFiles() throws {
        let dir = try TemporaryDirectory()
        #expect(throws: CheckpointError.self) { try SafetensorsFile(path: dir.path + "/none.safetensors") }
        let short = dir.path + "/short.safetensors"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        #expect(throws: CheckpointError.self) { try SafetensorsFile(path: short) }
        let huge = dir.path + "/huge.safetensors"
        var len = UInt64(1 << 40).littleEndian
        try (Data(bytes: &len, count: 8) + Data("{}".utf8)).write(to: URL(fileURLWithPath: huge))
        #expect(throws: CheckpointError.self) { try SafetensorsFile(path: huge) }
        let good = try Data(contentsOf: URL(fileURLWithPath: try Self.sample(in: dir)))
        let cut = dir.path + "/cut.safetensors"
        try good.prefix(good.count - 3).write(to: URL(fileURLWithPath: cut))
        do {
            _ = try SafetensorsFile(path: cut)
            Issue.record("truncated file accepted")
        } catch let e as CheckpointError {
            #expect(e.message.contains("cut.safetensors"))
            #expect(e.message.contains("truncated"))
        }
    }

    /// Thousands of mutated headers and truncated files: every one is refused or, when the
    /// mutation happens to leave a valid file, every tensor it describes lies inside the file.
    @Test("randomized corruption: all refused or consistent, none crash")
    func randomizedCorruption() throws {
        let dir = try TemporaryDirectory()
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: try Self.sample(in: dir))))
        let headerLen = Int(good[0]) | Int(good[1]) << 8
        let headerBytes = Array(good[8..<(8 + headerLen)])
        let dataSize = good.count - 8 - headerLen
        var rng = SystemRandomNumberGenerator()
        var refused = 0, accepted = 0
        let tokens = ["-1", "1e300", "18446744073709551616", "9223372036854775807", "\"F64\"", "\"I8\"", "[]", "{}",
                      "null", "true", "[0,0]", "[1,2,3]", "\"\\u0000\"", "\"\\ud800\"", ",", ":", "]", "}"]
        for i in 0..<4000 {
            var h = headerBytes
            switch i % 4 {
            case 0:  // random byte flips
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    h[Int.random(in: 0..<h.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            case 1:  // splice a hostile token somewhere
                let t = Array(tokens.randomElement(using: &rng)!.utf8)
                let at = Int.random(in: 0..<h.count, using: &rng)
                let len = Int.random(in: 0...min(6, h.count - at), using: &rng)
                h.replaceSubrange(at..<(at + len), with: t)
            case 2:  // change digits (shapes and offsets)
                let digits = h.indices.filter { h[$0] >= 0x30 && h[$0] <= 0x39 }
                if let d = digits.randomElement(using: &rng) { h[d] = UInt8.random(in: 0x30...0x39, using: &rng) }
            default:  // truncate the header
                h = Array(h.prefix(Int.random(in: 0..<h.count, using: &rng)))
            }
            do {
                let parsed = try SafetensorsFile.parseHeader(h, path: "fuzz.safetensors", dataSize: dataSize)
                accepted += 1
                for t in parsed.tensors.values {
                    #expect(t.range.upperBound <= dataSize && t.range.count == t.elementCount * t.dtype.size)
                }
            } catch is CheckpointError {
                refused += 1
            }
        }
        // Whole-file truncations go through the real open/mmap path.
        let path = dir.path + "/trunc.safetensors"
        for n in stride(from: 0, to: good.count, by: max(1, good.count / 300)) {
            try Data(good.prefix(n)).write(to: URL(fileURLWithPath: path))
            do {
                let f = try SafetensorsFile(path: path)
                for name in f.names { _ = try f.mapped(name).toFloat32() }
                accepted += 1
            } catch is CheckpointError {
                refused += 1
            }
        }
        #expect(refused > 3000, "refused \(refused), accepted \(accepted)")
    }

    @Test("sharded archive via an index, and a broken index")
    func sharded() throws {
        let dir = try TemporaryDirectory()
        let a = Tensor(shape: [2, 2], values: [1, 2, 3, 4]), b = Tensor(shape: [3], values: [5, 6, 7])
        try SafetensorsWriter.write([("x.weight", a, .f16)], to: dir.path + "/model.fp16-00001-of-00002.safetensors")
        try SafetensorsWriter.write([("y.bias", b, .f16)], to: dir.path + "/model.fp16-00002-of-00002.safetensors")
        let index = #"{"metadata":{"total_size":14},"weight_map":{"x.weight":"model.fp16-00001-of-00002.safetensors","y.bias":"model.fp16-00002-of-00002.safetensors"}}"#
        try index.write(toFile: dir.path + "/model.safetensors.index.fp16.json", atomically: true, encoding: .utf8)
        let archive = try SafetensorsArchive(index: dir.path + "/model.safetensors.index.fp16.json")
        #expect(try archive.mapped("y.bias").toFloat32().values == [5, 6, 7])
        #expect(archive.files.count == 2)
        let bad = #"{"weight_map":{"x.weight":"model.fp16-00001-of-00002.safetensors","z":"model.fp16-00002-of-00002.safetensors"}}"#
        try bad.write(toFile: dir.path + "/bad.json", atomically: true, encoding: .utf8)
        #expect(throws: CheckpointError.self) { try SafetensorsArchive(index: dir.path + "/bad.json") }
        let escape = #"{"weight_map":{"x.weight":"../etc/passwd"}}"#
        try escape.write(toFile: dir.path + "/escape.json", atomically: true, encoding: .utf8)
        #expect(throws: CheckpointError.self) { try SafetensorsArchive(index: dir.path + "/escape.json") }
    }

    @Test("the weight loader names component, file, tensor and both shapes")
    func loaderMessages() throws {
        let dir = try TemporaryDirectory()
        let path = try Self.sample(in: dir)
        let loader = WeightLoader(component: "unet", archive: try SafetensorsArchive(paths: [path]))
        do {
            _ = try loader.tensor("a", shape: [4, 3])
            Issue.record("wrong shape accepted")
        } catch let e as CheckpointError {
            #expect(e.message == "unet: sample.safetensors: tensor 'a' has shape [3, 4], but the config implies [4, 3]")
        }
        do {
            _ = try loader.tensor("missing.weight", shape: [2])
            Issue.record("missing tensor accepted")
        } catch let e as CheckpointError {
            #expect(e.message.contains("unet: tensor 'missing.weight'"))
            #expect(e.message.contains("sample.safetensors"))
        }
        _ = try loader.tensor("b", shape: [5])
        #expect(Set(loader.unusedNames) == ["a", "c"])
    }
}

@Suite("SHA-256")
struct SHA256Tests {
    @Test("FIPS 180-4 test vectors")
    func vectors() {
        func hash(_ s: String) -> String {
            var h = SHA256()
            h.update(Array(s.utf8))
            return SHA256.hex(h.finalize())
        }
        #expect(hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var h = SHA256()
        for _ in 0..<1000 { h.update(Array(repeating: UInt8(ascii: "a"), count: 1000)) }
        #expect(SHA256.hex(h.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
