/// The ChatGLM3 tokenizer as KolorsPipeline uses it (mirrors diffusers' `ChatGLMTokenizer` /
/// `SPTokenizer`, called with padding="max_length", truncation=True, max_length=256).
///
/// Special tokens follow the SentencePiece vocabulary in the order
/// `[MASK] [gMASK] [sMASK] sop eop <|system|> <|user|> <|assistant|> <|observation|>`.
/// Every text becomes `[gMASK] sop` + its SentencePiece ids (special-token text in a prompt is
/// ordinary text), cut on the right to `maxLength`, then padded on the LEFT with the unknown
/// id; the attention mask is 1 on real tokens and position ids count 0, 1, … over them (0 on
/// padding).
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
        prefixIds = [special["[gMASK]"] ?? 0, special["sop"] ?? 0]
        padId = sentencePiece.unkId
    }

    /// SentencePiece ids of `text`, without the prefix (`SPTokenizer.encode`).
    public func encode(_ text: String) -> [Int32] {
        sentencePiece.encode(text)
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
