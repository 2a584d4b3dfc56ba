/// The tokenizer output the pipeline feeds the text encoder (mirrors the `BatchEncoding`
/// that `ChatGLMTokenizer.__call__` returns): one row per text, each `maxLength` long.
public struct TokenizedBatch: Equatable, Sendable {
    public var inputIds: [[Int32]]
    public var attentionMask: [[Int32]]
    public var positionIds: [[Int32]]

    public init(inputIds: [[Int32]], attentionMask: [[Int32]], positionIds: [[Int32]]) {
        self.inputIds = inputIds
        self.attentionMask = attentionMask
        self.positionIds = positionIds
    }

    public var count: Int { inputIds.count }
}
