/// A LoRA file this engine cannot apply, with the keys or layers at fault.
public struct LoRAError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
