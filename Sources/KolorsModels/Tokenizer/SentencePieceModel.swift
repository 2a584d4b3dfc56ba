import Foundation
import KolorsEngine

/// A decoded `sentencepiece.ModelProto` (sentencepiece_model.proto): the pieces and the parts
/// of `trainer_spec` and `normalizer_spec` that matter when encoding. Unknown fields are
/// skipped, repeated messages merge and the last scalar wins, as protobuf's parser does.
public struct SentencePieceModel: Sendable {
    /// `ModelProto.SentencePiece.Type`.
    public enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// `ModelProto.SentencePiece`: the piece text as raw bytes, its score and its type.
    public struct Piece: Sendable, Equatable {
        public var bytes: [UInt8] = []
        public var score: Float = 0
        public var type: PieceType = .normal
        public var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// `TrainerSpec.ModelType`.
    public enum ModelType: Int, Sendable {
        case unigram = 1, bpe = 2, word = 3, char = 4
    }

    /// The `TrainerSpec` fields read here (defaults as in the .proto).
    public struct TrainerSpec: Sendable {
        public var modelType: ModelType = .unigram
        public var vocabSize: Int32 = 8000
        public var byteFallback = false
        public var treatWhitespaceAsSuffix = false
        public var splitDigits = false
        public var allowWhitespaceOnlyPieces = false
        public var unkId: Int32 = 0
        public var bosId: Int32 = 1
        public var eosId: Int32 = 2
        public var padId: Int32 = -1
        /// Piece names; empty means the default (`<unk>`, `<s>`, `</s>`, `<pad>`).
        public var unkPiece = "", bosPiece = "", eosPiece = "", padPiece = ""
    }

    /// `NormalizerSpec` (defaults as in the .proto).
    public struct NormalizerSpec: Sendable {
        public var name = ""
        public var precompiledCharsmap: [UInt8] = []
        public var addDummyPrefix = true
        public var removeExtraWhitespaces = true
        public var escapeWhitespaces = true
    }

    public var pieces: [Piece] = []
    public var trainerSpec = TrainerSpec()
    public var normalizerSpec = NormalizerSpec()

    public init() {}

    /// Decodes a serialized `ModelProto`; throws on malformed protobuf.
    public init(serialized bytes: [UInt8]) throws {
        var reader = ProtobufReader(bytes)
        while let (field, wire) = try reader.readKey() {
            switch (field, wire) {
            case (1, .lengthDelimited):
                var sub = try reader.readMessage()
                pieces.append(try Self.readPiece(&sub))
            case (2, .lengthDelimited):
                var sub = try reader.readMessage()
                try Self.readTrainerSpec(&sub, into: &trainerSpec)
            case (3, .lengthDelimited):
                var sub = try reader.readMessage()
                try Self.readNormalizerSpec(&sub, into: &normalizerSpec)
            default:
                try reader.skip(wire, field: field)  // self_test_data, denormalizer_spec, …
            }
        }
    }

    /// Reads and decodes a `.model` file; errors name the file.
    public init(contentsOfFile path: String) throws {
        let data: Data
        do {
            // Real models are 1–5 MB; a FIFO or device in its place is refused, not read forever.
            data = try RegularFile.read(path, maxBytes: 256 << 20)
        } catch let e as RegularFileError {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw SentencePieceError("is a directory, not a SentencePiece model", file: path)
            }
            throw SentencePieceError(e.missing ? "no such file" : e.reason, file: path)
        }
        do {
            try self.init(serialized: [UInt8](data))
        } catch let error as SentencePieceError {
            throw SentencePieceError("not a valid SentencePiece model (\(error.message))", file: path)
        }
    }

    private static func readPiece(_ reader: inout ProtobufReader) throws -> Piece {
        var piece = Piece()
        while let (field, wire) = try reader.readKey() {
            switch (field, wire) {
            case (1, .lengthDelimited): piece.bytes = try reader.readBytes()
            case (2, .fixed32): piece.score = Float(bitPattern: try reader.readFixed32())
            case (3, .varint):
                // An enum value the schema does not know is kept as an unknown field (proto2).
                if let type = PieceType(rawValue: Int(truncatingIfNeeded: Int32(truncatingIfNeeded: try reader.readVarint()))) {
                    piece.type = type
                }
            default: try reader.skip(wire, field: field)
            }
        }
        return piece
    }

    private static func readTrainerSpec(_ reader: inout ProtobufReader, into spec: inout TrainerSpec) throws {
        while let (field, wire) = try reader.readKey() {
            if wire == .lengthDelimited && (45...48).contains(field) {
                let name = String(decoding: try reader.readBytes(), as: UTF8.self)
                switch field {
                case 45: spec.unkPiece = name
                case 46: spec.bosPiece = name
                case 47: spec.eosPiece = name
                default: spec.padPiece = name
                }
                continue
            }
            guard wire == .varint else {
                try reader.skip(wire, field: field)
                continue
            }
            let value = try reader.readVarint()
            let int32 = Int32(truncatingIfNeeded: value)
            switch field {
            case 3: if let type = ModelType(rawValue: Int(int32)) { spec.modelType = type }
            case 4: spec.vocabSize = int32
            case 24: spec.treatWhitespaceAsSuffix = value != 0
            case 25: spec.splitDigits = value != 0
            case 26: spec.allowWhitespaceOnlyPieces = value != 0
            case 35: spec.byteFallback = value != 0
            case 40: spec.unkId = int32
            case 41: spec.bosId = int32
            case 42: spec.eosId = int32
            case 43: spec.padId = int32
            default: break
            }
        }
    }

    private static func readNormalizerSpec(_ reader: inout ProtobufReader,
                                           into spec: inout NormalizerSpec) throws {
        while let (field, wire) = try reader.readKey() {
            switch (field, wire) {
            case (1, .lengthDelimited): spec.name = String(decoding: try reader.readBytes(), as: UTF8.self)
            case (2, .lengthDelimited): spec.precompiledCharsmap = try reader.readBytes()
            case (3, .varint): spec.addDummyPrefix = try reader.readVarint() != 0
            case (4, .varint): spec.removeExtraWhitespaces = try reader.readVarint() != 0
            case (5, .varint): spec.escapeWhitespaces = try reader.readVarint() != 0
            default: try reader.skip(wire, field: field)
            }
        }
    }
}
