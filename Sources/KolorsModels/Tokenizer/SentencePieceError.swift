/// A SentencePiece model that cannot be read or used (mirrors the `util::Status` errors that
/// sentencepiece's `Load` returns), optionally naming the file it came from.
public struct SentencePieceError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The model file, when the model came from one.
    public var file: String?
    /// What is wrong, in words.
    public var message: String

    public init(_ message: String, file: String? = nil) {
        self.message = message
        self.file = file
    }

    /// The same error, naming `file`.
    public func naming(_ file: String) -> SentencePieceError {
        SentencePieceError(message, file: file)
    }

    public var description: String {
        if let file { return "\(file): \(message)" }
        return message
    }
}
