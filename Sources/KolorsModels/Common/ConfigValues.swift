/// A config value diffusers accepts as one int (applied to every block) or a list.
public enum IntOrList: Decodable, Sendable, Equatable {
    case one(Int)
    case list([Int])

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Int.self) { self = .one(v) } else { self = .list(try c.decode([Int].self)) }
    }

    /// The per-block values for `count` blocks.
    public func values(_ count: Int) -> [Int] {
        switch self {
        case .one(let v): return Array(repeating: v, count: count)
        case .list(let l): return l
        }
    }
}

/// Thrown when a config asks for something this engine does not implement.
public struct UnsupportedConfiguration: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
