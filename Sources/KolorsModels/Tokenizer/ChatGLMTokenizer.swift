import KolorsEngine
/// The ChatGLM3 tokenizer as KolorsPipeline uses it (mirrors diffusers' `ChatGLMTokenizer` /
/// `SPTokenizer`, called with padding="max_length", truncation=True, max_length=256).
///
/// Special tokens follow the SentencePiece vocabulary in the order
/// `[MASK] [gMASK] [sMASK] sop eop <|system|> <|user|> <|assistant|> <|observation|>`.
/// Every text becomes `[gMASK] sop` + its SentencePiece pieces mapped to ids, cut on the right
/// to `maxLength`, then padded on the LEFT with the unknown id; the attention mask is 1 on real
/// tokens and position ids count 0, 1, … over them (0 on padding). Special-token text in a
/// prompt is ordinary text, but a single piece spelled exactly like a special token (say the
/// mid-word piece "sop" of "xsop") gets the special id, because `convert_token_to_id` looks
/// the piece up among the special tokens first.
public struct ChatGLMTokenizer: Sendable {
    public static let specialTokenNames = [
        "[MASK]", "[gMASK]", "[sMASK]", "sop", "eop",
        "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>",
    ]

    public let sentencePiece: SentencePieceProcessor
    /// Special token name → id (`SPTokenizer.special_tokens`).
    public let specialTokens: [String: Int32]
    /// The ids every text starts with: `[gMASK]`, `sop`.
    public let prefixIds: [Int32]
    /// Padding id (`SPTokenizer.pad_id` = the unknown id).
    public let padId: Int32
    /// Special token spelling → id, for the piece-to-id quirk above.
    private let specialByBytes: [[UInt8]: Int32]
    private let specialLengths: ClosedRange<Int>
    /// SentencePiece id → special id, for vocabulary pieces spelled like a special token.
    private let specialBySentencePieceId: [Int32: Int32]
    /// SentencePiece pieces plus the special tokens (`vocab_size`).
    public var vocabSize: Int { sentencePiece.vocabSize + Self.specialTokenNames.count }

    /// Loads `tokenizer.model`; a missing or corrupt file gives an error naming it.
    public init(modelFile path: String) throws {
        self.init(sentencePiece: try SentencePieceProcessor(modelFile: path))
    }

    public init(sentencePiece: SentencePieceProcessor) {
        self.sentencePiece = sentencePiece
        var special: [String: Int32] = [:]
        for (k, name) in Self.specialTokenNames.enumerated() {
            special[name] = Int32(sentencePiece.vocabSize + k)
        }
        specialTokens = special
        specialByBytes = Dictionary(uniqueKeysWithValues: special.map { (Array($0.key.utf8), $0.value) })
        let lengths = specialByBytes.keys.map(\.count)
        specialLengths = (lengths.min() ?? 0)...(lengths.max() ?? 0)
        var remap: [Int32: Int32] = [:]
        for (id, piece) in sentencePiece.model.pieces.enumerated() where Int32(id) != sentencePiece.unkId {
            if let special = specialByBytes[piece.bytes] { remap[Int32(id)] = special }
        }
        specialBySentencePieceId = remap
        prefixIds = [special["[gMASK]"] ?? 0, special["sop"] ?? 0]
        padId = sentencePiece.unkId
    }

    /// Ids of `text` without the prefix, as the pipeline gets them (`convert_tokens_to_ids` of
    /// `EncodeAsPieces`): SentencePiece's ids, except that a piece spelled like a special
    /// token gets the special id.
    public func encode(_ text: String) -> [Int32] {
        let utf8 = Array(text.utf8)
        if !sentencePiece.byteFallback {
            // Without byte fallback a run of unknown characters is one piece with its own text.
            return sentencePiece.encodeTokens(utf8).map { token in
                if specialLengths.contains(token.bytes.count), let id = specialByBytes[token.bytes] { return id }
                return token.id
            }
        }
        var ids = sentencePiece.encode(utf8: utf8)
        if !specialBySentencePieceId.isEmpty {
            for i in ids.indices { if let special = specialBySentencePieceId[ids[i]] { ids[i] = special } }
        }
        return ids
    }

    /// Number of tokens of `text` with the two prefix tokens, before truncation (what the
    /// studio compares with the 256-token limit).
    public func tokenCount(_ text: String) -> Int {
        prefixIds.count + encode(text).count
    }

    /// Tokenizes a batch exactly as `KolorsPipeline.encode_prompt` does.
    public func callAsFunction(_ texts: [String], maxLength: Int = 256) -> TokenizedBatch {
        var batch = TokenizedBatch(inputIds: [], attentionMask: [], positionIds: [])
        for text in texts {
            let (ids, mask, positions) = row(for: encode(text), maxLength: maxLength)
            batch.inputIds.append(ids)
            batch.attentionMask.append(mask)
            batch.positionIds.append(positions)
        }
        return batch
    }

    /// Tokenizes one text (a batch of one).
    public func callAsFunction(_ text: String, maxLength: Int = 256) -> TokenizedBatch {
        self([text], maxLength: maxLength)
    }

    /// Prefix, right-side truncation that keeps the prefix, left padding. Below a max length of
    /// 2 only the prefix is left (transformers' truncation removes every text id then).
    private func row(for textIds: [Int32], maxLength: Int) -> ([Int32], [Int32], [Int32]) {
        let kept = textIds.prefix(max(0, maxLength - prefixIds.count))
        let ids = prefixIds + kept
        let padding = max(0, maxLength - ids.count)
        let inputIds = [Int32](repeating: padId, count: padding) + ids
        let mask = [Int32](repeating: 0, count: padding) + [Int32](repeating: 1, count: ids.count)
        let positions = [Int32](repeating: 0, count: padding) + (0..<Int32(ids.count)).map { $0 }
        return (inputIds, mask, positions)
    }
}

extension ChatGLMTokenizer {
    /// Throws unless every id this tokenizer can produce has a row in the text encoder's
    /// embedding table (`padded_vocab_size`); otherwise a prompt would index past the table.
    public func checkFits(_ textEncoder: ChatGLMConfig) throws {
        guard vocabSize <= textEncoder.paddedVocabSize else {
            throw CheckpointError("tokenizer has \(vocabSize) ids but the text encoder embeds only \(textEncoder.paddedVocabSize) (text_encoder/config.json padded_vocab_size): the tokenizer does not belong to this text encoder")
        }
    }

    /// The tokenizer of a diffusers folder (`tokenizer/tokenizer.model`).
    public static func load(from model: DiffusersModel) throws -> ChatGLMTokenizer {
        let path = model.directory(of: "tokenizer") + "/tokenizer.model"
        do {
            return try ChatGLMTokenizer(modelFile: path)
        } catch let error as SentencePieceError {
            throw SentencePieceError("tokenizer: \(error)")
        }
    }
}
