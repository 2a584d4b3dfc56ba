import Foundation
import KolorsModels
import Testing
import KolorsTestSupport

/// SplitMix64: a small seeded generator so that the mutations are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("SentencePiece model files")
struct SentencePieceModelTests {
    static let probes = ["", " ", "hello world", "一只可爱的小猫", "ＡＢＣ，！ 😀 龘", "  a\tb\nc  ", "<mark>ab☃☃"]

    /// Loads `bytes` if it can; if it loads, encoding must still work. Returns whether it loaded.
    @discardableResult
    func exercise(_ bytes: [UInt8]) -> Bool {
        guard let sp = try? SentencePieceProcessor(serialized: bytes) else { return false }
        for probe in Self.probes {
            let ids = sp.encode(probe)
            #expect(ids.allSatisfy { $0 >= 0 && Int($0) < sp.vocabSize })
            _ = sp.encodeAsPieces(probe)
        }
        _ = sp.encode(utf8: [0xFF, 0xE4, 0xBD, 0x41, 0xC0, 0x80])
        return true
    }

    @Test("the fixture models decode with the flags they were trained with")
    func decode() throws {
        let chatglm = try SentencePieceModel(contentsOfFile: TokenizerFixtures.modelPath("tiny-kolors/tokenizer/tokenizer.model"))
        #expect(chatglm.pieces.count == 2500)
        #expect(chatglm.pieces[0].type == .unknown && chatglm.pieces[0].text == "<unk>")
        #expect(chatglm.pieces[1].type == .control && chatglm.pieces[2].text == "</s>")
        #expect(chatglm.pieces[3].type == .byte && chatglm.pieces[258].text == "<0xFF>")
        #expect(chatglm.trainerSpec.modelType == .bpe && chatglm.trainerSpec.vocabSize == 2500)
        #expect(chatglm.trainerSpec.allowWhitespaceOnlyPieces && chatglm.trainerSpec.padId == -1)
        #expect(chatglm.normalizerSpec.precompiledCharsmap.isEmpty)
        #expect(!chatglm.normalizerSpec.removeExtraWhitespaces && chatglm.normalizerSpec.escapeWhitespaces)

        let nfkc = try SentencePieceModel(contentsOfFile: TokenizerFixtures.modelPath("tokenizers/nfkc-bpe.model"))
        #expect(nfkc.normalizerSpec.name == "nmt_nfkc")
        #expect(nfkc.normalizerSpec.precompiledCharsmap.count > 100_000)
        #expect(nfkc.normalizerSpec.removeExtraWhitespaces)

        let edge = try SentencePieceModel(contentsOfFile: TokenizerFixtures.modelPath("tokenizers/edge-bpe.model"))
        #expect(!edge.normalizerSpec.addDummyPrefix && !edge.trainerSpec.byteFallback)
        #expect(edge.pieces.contains { $0.type == .userDefined && $0.text == "<mark>" })
        #expect(edge.pieces.filter { $0.type == .unused }.count > 10)

        let suffix = try SentencePieceModel(contentsOfFile: TokenizerFixtures.modelPath("tokenizers/suffix-bpe.model"))
        #expect(suffix.trainerSpec.treatWhitespaceAsSuffix && !suffix.normalizerSpec.escapeWhitespaces)
    }

    @Test("missing, unreadable and corrupt files give errors naming the file")
    func fileErrors() throws {
        let missing = "/nonexistent/dir/tokenizer.model"
        #expect { try ChatGLMTokenizer(modelFile: missing) } throws: { error in
            "\(error)".contains(missing) && "\(error)".contains("no such file")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect { try ChatGLMTokenizer(modelFile: dir.path) } throws: { "\($0)".contains(dir.path) }

        let garbage = dir.appendingPathComponent("garbage.model")
        try Data("this is not a protobuf\n".utf8).write(to: garbage)
        #expect { try ChatGLMTokenizer(modelFile: garbage.path) } throws: { error in
            "\(error)".hasPrefix(garbage.path) && "\(error)".contains("not a valid SentencePiece model")
        }

        let empty = dir.appendingPathComponent("empty.model")
        try Data().write(to: empty)
        #expect { try ChatGLMTokenizer(modelFile: empty.path) } throws: { error in
            "\(error)".hasPrefix(empty.path) && "\(error)".contains("no pieces")
        }
    }

    @Test("truncated varints and lengths past the end are refused with a clear message")
    func malformedProtobuf() {
        #expect { try SentencePieceModel(serialized: [0x0A, 0x85]) } throws: { "\($0)".contains("truncated varint") }
        #expect { try SentencePieceModel(serialized: [0x0A, 0x05, 0x0A]) } throws: { "\($0)".contains("past the end") }
        #expect { try SentencePieceModel(serialized: [0x0F]) } throws: { "\($0)".contains("wire type") }
        #expect { try SentencePieceModel(serialized: [0x15, 0x00]) } throws: { "\($0)".contains("truncated fixed32") }
        #expect(throws: SentencePieceError.self) {
            try SentencePieceModel(serialized: [UInt8](repeating: 0xFF, count: 12))
        }
        // A valid protobuf that is no usable model.
        #expect(throws: SentencePieceError.self) { try SentencePieceProcessor(serialized: [0x0A, 0x00]) }
    }

    @Test("truncations of the ChatGLM-like model (about 1,300 cut points) are refused or usable, never a crash")
    func truncations() throws {
        let bytes = try TokenizerFixtures.modelBytes("tiny-kolors/tokenizer/tokenizer.model")
        #expect(exercise(bytes))
        var loaded = 0
        var cuts = Array(0..<min(600, bytes.count))
        cuts += stride(from: 600, to: bytes.count, by: 97)
        cuts += (bytes.count - 300)..<bytes.count
        for cut in cuts where exercise(Array(bytes[..<cut])) { loaded += 1 }
        // Cutting between pieces leaves a valid protobuf, but without the specs (written
        // last) the byte pieces are refused, and before them the unknown piece is missing.
        #expect(loaded < cuts.count)
    }

    @Test("hundreds of random byte flips never crash", arguments: [
        "tiny-kolors/tokenizer/tokenizer.model", "tokenizers/nfkc-bpe.model", "tokenizers/edge-bpe.model",
    ])
    func byteFlips(model: String) throws {
        let bytes = try TokenizerFixtures.modelBytes(model)
        var rng = SplitMix64(state: 0x5EED_0000 &+ UInt64(bytes.count))
        var loaded = 0
        let rounds = 300
        for round in 0..<rounds {
            var mutated = bytes
            let flips = 1 + round % 4
            for _ in 0..<flips {
                let at = Int.random(in: 0..<mutated.count, using: &rng)
                mutated[at] = round % 3 == 0 ? UInt8.random(in: 0...255, using: &rng) : mutated[at] ^ (1 << UInt8(round % 8))
            }
            if exercise(mutated) { loaded += 1 }
        }
        #expect(loaded > 0)  // many flips hit piece text or scores and leave a usable model
    }

    @Test("a damaged charsmap trie only misses, never reads out of bounds")
    func charsmapFlips() throws {
        let bytes = try TokenizerFixtures.modelBytes("tokenizers/nfkc-bpe.model")
        var model = try SentencePieceModel(serialized: bytes)
        let original = model.normalizerSpec.precompiledCharsmap
        var rng = SplitMix64(state: 42)
        for round in 0..<200 {
            var blob = original
            for _ in 0..<(1 + round % 8) {
                let at = Int.random(in: 4..<blob.count, using: &rng)
                blob[at] = UInt8.random(in: 0...255, using: &rng)
            }
            if round % 50 == 7 { blob = Array(blob.prefix(Int.random(in: 0..<blob.count, using: &rng))) }
            model.normalizerSpec.precompiledCharsmap = blob
            guard let sp = try? SentencePieceProcessor(model: model) else { continue }
            for probe in Self.probes + ["ｶﾀｶﾅ ﬁ ㎏ ①", "\u{3000}\u{00A0}x"] { _ = sp.encodeAsPieces(probe) }
        }
    }
}
