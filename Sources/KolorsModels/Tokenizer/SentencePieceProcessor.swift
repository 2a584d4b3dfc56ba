import Foundation

/// Encodes text with a SentencePiece BPE model (mirrors `SentencePieceProcessor::Encode` /
/// `EncodeAsPieces` with default options): normalize, segment with BPE, then unknown pieces
/// become UTF-8 byte pieces `<0xNN>` (byte_fallback) or runs of unknowns merge into one.
public struct SentencePieceProcessor: Sendable {
    public let model: SentencePieceModel
    public let normalizer: SentencePieceNormalizer
    private let bpe: SentencePieceBPE
    private let byteIds: [Int32]
    /// `ByteToPiece`: "<0x00>" … "<0xFF>" (upper-case hex).
    static let bytePieces: [[UInt8]] = (0..<256).map { (b: Int) -> [UInt8] in
        let hex = Array("0123456789ABCDEF".utf8)
        return Array("<0x".utf8) + [hex[b >> 4], hex[b & 15], UInt8(ascii: ">")]
    }
    public let byteFallback: Bool

    /// Number of pieces (`vocab_size()` / `GetPieceSize()`).
    public var vocabSize: Int { model.pieces.count }
    /// Index of the UNKNOWN piece.
    public let unkId: Int32
    /// Ids of the bos/eos/pad pieces, -1 where the model has none (as `bos_id()` etc.).
    public let bosId: Int32, eosId: Int32, padId: Int32

    /// Reads a `.model` file; errors name the file.
    public init(modelFile path: String) throws {
        let model = try SentencePieceModel(contentsOfFile: path)
        do {
            try self.init(model: model)
        } catch let error as SentencePieceError {
            throw SentencePieceError("unusable SentencePiece model (\(error.message))", file: path)
        }
    }

    public init(serialized: [UInt8]) throws {
        try self.init(model: try SentencePieceModel(serialized: serialized))
    }

    /// Checks the model as `ModelInterface::InitializePieces` does and prepares the tables.
    public init(model: SentencePieceModel) throws {
        guard !model.pieces.isEmpty else { throw SentencePieceError("the model has no pieces") }
        guard model.trainerSpec.modelType == .bpe else {
            throw SentencePieceError("model type \(model.trainerSpec.modelType) is not supported (only BPE)")
        }
        let pieces = model.pieces
        var mergeable = PieceTable(capacity: pieces.count)
        var reserved = PieceTable(capacity: pieces.count)
        var userSymbols: [[UInt8]] = []
        var unknown: Int32 = -1
        var byteFound = [Bool](repeating: false, count: 256)
        let bytePieceValue = Dictionary(uniqueKeysWithValues: Self.bytePieces.enumerated().map { ($1, UInt8($0)) })
        for (i, piece) in pieces.enumerated() {
            guard !piece.bytes.isEmpty else { throw SentencePieceError("piece \(i) is empty") }
            let id = Int32(i)
            switch piece.type {
            case .normal, .userDefined, .unused:
                guard mergeable.insert(piece.bytes, value: id) else {
                    throw SentencePieceError("piece \(piece.text.debugDescription) is defined twice")
                }
            case .unknown, .control, .byte:
                guard reserved.insert(piece.bytes, value: id) else {
                    throw SentencePieceError("piece \(piece.text.debugDescription) is defined twice")
                }
            }
            switch piece.type {
            case .userDefined:
                userSymbols.append(piece.bytes)
            case .unknown:
                guard unknown < 0 else { throw SentencePieceError("more than one unknown piece") }
                unknown = id
            case .byte:
                guard model.trainerSpec.byteFallback else {
                    throw SentencePieceError("byte piece \(piece.text) found although byte_fallback is false")
                }
                guard let value = bytePieceValue[piece.bytes] else {
                    throw SentencePieceError("invalid byte piece \(piece.text.debugDescription)")
                }
                byteFound[Int(value)] = true
            default:
                break
            }
        }
        guard unknown >= 0 else { throw SentencePieceError("the model has no unknown piece") }
        if model.trainerSpec.byteFallback && byteFound.contains(false) {
            throw SentencePieceError("byte_fallback is set but the 256 byte pieces are not all there")
        }

        let matcher = UserSymbolMatcher(symbols: userSymbols)
        self.model = model
        self.normalizer = try SentencePieceNormalizer(
            spec: model.normalizerSpec, treatWhitespaceAsSuffix: model.trainerSpec.treatWhitespaceAsSuffix,
            userSymbols: matcher)
        self.bpe = SentencePieceBPE(
            mergeable: mergeable, reserved: reserved, scores: pieces.map(\.score),
            isUnused: pieces.map { $0.type == .unused }, unknownId: unknown, userSymbols: matcher)
        self.byteFallback = model.trainerSpec.byteFallback
        self.byteIds = Self.bytePieces.map { reserved.lookup($0) ?? mergeable.lookup($0) ?? unknown }
        self.unkId = unknown
        func controlId(_ name: String, _ fallback: String) -> Int32 {
            let key = Array((name.isEmpty ? fallback : name).utf8.prefix { $0 != 0 })
            guard let id = reserved.lookup(key), pieces[Int(id)].type == .control else { return -1 }
            return id
        }
        bosId = controlId(model.trainerSpec.bosPiece, "<s>")
        eosId = controlId(model.trainerSpec.eosPiece, "</s>")
        padId = controlId(model.trainerSpec.padPiece, "<pad>")
    }

    /// A piece of the result: its id and its text as bytes.
    public struct Token: Equatable, Sendable {
        public var id: Int32
        public var bytes: [UInt8]
        public var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// Encodes UTF-8 bytes (malformed sequences allowed) into pieces with ids.
    public func encodeTokens(_ utf8: [UInt8]) -> [Token] {
        let normalized = normalizer.normalize(utf8)
        return normalized.withUnsafeBufferPointer { text -> [Token] in
            var tokens: [Token] = []
            var previousWasUnknown = false
            for segment in bpe.encode(text) {
                let isUnknown = segment.id == unkId
                let range = segment.start..<(segment.start + segment.length)
                if isUnknown && byteFallback {
                    for b in text[range] { tokens.append(Token(id: byteIds[Int(b)], bytes: Self.bytePieces[Int(b)])) }
                } else if isUnknown && previousWasUnknown, let last = tokens.indices.last {
                    tokens[last].bytes.append(contentsOf: text[range])
                } else {
                    tokens.append(Token(id: segment.id, bytes: Array(text[range])))
                }
                previousWasUnknown = isUnknown
            }
            return tokens
        }
    }

    /// Piece ids of `text` (`sp.encode(text)`).
    public func encode(_ text: String) -> [Int32] {
        encode(utf8: Array(text.utf8))
    }

    /// Piece ids of raw UTF-8 bytes; only the ids are built, so this is the fast path.
    public func encode(utf8: [UInt8]) -> [Int32] {
        let normalized = normalizer.normalize(utf8)
        return normalized.withUnsafeBufferPointer { text -> [Int32] in
            var ids: [Int32] = []
            var previousWasUnknown = false
            for segment in bpe.encode(text) {
                let isUnknown = segment.id == unkId
                if isUnknown && byteFallback {
                    for k in segment.start..<(segment.start + segment.length) { ids.append(byteIds[Int(text[k])]) }
                } else if !(isUnknown && previousWasUnknown) {
                    ids.append(segment.id)
                }
                previousWasUnknown = isUnknown
            }
            return ids
        }
    }

    /// Piece texts of `text` (`sp.EncodeAsPieces(text)`).
    public func encodeAsPieces(_ text: String) -> [String] {
        encodeTokens(Array(text.utf8)).map(\.text)
    }

    /// The text of piece `id` (`IdToPiece`); nil outside the vocabulary.
    public func piece(_ id: Int32) -> String? {
        guard id >= 0 && Int(id) < model.pieces.count else { return nil }
        return model.pieces[Int(id)].text
    }

    /// `PieceToId`: the id of a piece text, or the unknown id.
    public func pieceToId(_ piece: String) -> Int32 {
        let bytes = Array(piece.utf8)
        return bytes.withUnsafeBufferPointer { bpe.pieceToId($0, start: 0, length: bytes.count) }
    }
}
