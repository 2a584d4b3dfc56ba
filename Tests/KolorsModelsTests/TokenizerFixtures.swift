import Foundation
import KolorsModels
import KolorsTestSupport

/// The reference tables written by `scripts/fixtures/tokenizer.py`
/// (Tests/Fixtures/references/tokenizer_cases.json) and the fixture models.
enum TokenizerFixtures {
    struct Pieces: Decodable {
        var pieces: [String]
        var ids: [Int32]
    }

    struct Pipeline: Decodable {
        var inputIds: [Int32]
        var attentionMask: [Int32]
        var positionIds: [Int32]
    }

    struct Case: Decodable {
        var text: String
        var chatglm: Pieces
        var nfkc: Pieces
        var edge: Pieces
        var suffix: Pieces
        var pipeline: Pipeline
        /// `ChatGLMTokenizer` over the edge model, unpadded and untruncated.
        var edgePipelineIds: [Int32]

        subscript(model: String) -> Pieces {
            switch model {
            case "chatglm": return chatglm
            case "nfkc": return nfkc
            case "edge": return edge
            default: return suffix
            }
        }
    }

    struct ByteCase: Decodable {
        var hex: String
        var chatglm: Pieces
        var nfkc: Pieces
        var edge: Pieces
        var suffix: Pieces

        var bytes: [UInt8] {
            var out: [UInt8] = []
            var chars = Array(hex.utf8)[...]
            while chars.count >= 2, let b = UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16) {
                out.append(b)
                chars = chars.dropFirst(2)
            }
            return out
        }

        subscript(model: String) -> Pieces {
            switch model {
            case "chatglm": return chatglm
            case "nfkc": return nfkc
            case "edge": return edge
            default: return suffix
            }
        }
    }

    struct MaxLengthCase: Decodable {
        var text: String
        var maxLength: Int
        var inputIds: [Int32]
        var attentionMask: [Int32]
        var positionIds: [Int32]
    }

    struct Meta: Decodable {
        var sentencepiece: String
        var transformers: String
        var maxLength: Int
        var models: [String: String]
        var vocabSizes: [String: Int]
        var chatglmSpecialIds: [String: Int32]
    }

    struct File: Decodable {
        var meta: Meta
        var cases: [Case]
        var byteCases: [ByteCase]
        var maxLengthCases: [MaxLengthCase]
    }

    static let modelNames = ["chatglm", "nfkc", "edge", "suffix"]

    /// Repository root: three levels up from this file (Tests/KolorsModelsTests/…).
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let fixtures = root.appendingPathComponent("Tests/Fixtures")

    static func load() throws -> File {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("references/tokenizer_cases.json"))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(File.self, from: data)
    }

    static func modelPath(_ relative: String) -> String {
        fixtures.appendingPathComponent(relative).path
    }

    static func modelBytes(_ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(relative)))
    }
}
