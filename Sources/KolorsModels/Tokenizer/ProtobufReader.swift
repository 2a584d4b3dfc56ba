/// A reader of the protocol-buffers wire format (varints, fixed32/64, length-delimited
/// fields), the part of protobuf's `CodedInputStream` a `ModelProto` needs. Every read is
/// bounds-checked and throws on truncated or malformed input.
struct ProtobufReader {
    /// The wire types of protobuf field keys.
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
    }

    private let bytes: [UInt8]
    private(set) var position: Int
    private let end: Int

    init(_ bytes: [UInt8]) {
        self.init(bytes, range: 0..<bytes.count)
    }

    init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    var isAtEnd: Bool { position >= end }

    /// Reads a base-128 varint of at most 10 bytes (bits past the 64th are dropped, as protobuf does).
    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw SentencePieceError("truncated varint at byte \(position)") }
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw SentencePieceError("varint longer than 10 bytes at byte \(position - 1)") }
        }
    }

    /// Reads a field key; returns nil at the end of the message.
    mutating func readKey() throws -> (field: UInt64, wireType: WireType)? {
        if isAtEnd { return nil }
        let at = position
        let key = try readVarint()
        guard let wire = WireType(rawValue: UInt8(key & 7)) else {
            throw SentencePieceError("invalid wire type \(key & 7) at byte \(at)")
        }
        let field = key >> 3
        guard field != 0 else { throw SentencePieceError("field number 0 at byte \(at)") }
        return (field, wire)
    }

    mutating func readFixed32() throws -> UInt32 {
        guard end - position >= 4 else { throw SentencePieceError("truncated fixed32 at byte \(position)") }
        var value: UInt32 = 0
        for k in 0..<4 { value |= UInt32(bytes[position + k]) << (8 * UInt32(k)) }
        position += 4
        return value
    }

    mutating func readFixed64() throws -> UInt64 {
        guard end - position >= 8 else { throw SentencePieceError("truncated fixed64 at byte \(position)") }
        var value: UInt64 = 0
        for k in 0..<8 { value |= UInt64(bytes[position + k]) << (8 * UInt64(k)) }
        position += 8
        return value
    }

    /// Reads a length prefix and returns the range of the payload, advancing past it.
    mutating func readLengthDelimited() throws -> Range<Int> {
        let at = position
        let length = try readVarint()
        guard length <= UInt64(end - position) else {
            throw SentencePieceError("length \(length) at byte \(at) runs past the end of the data")
        }
        let range = position..<(position + Int(length))
        position = range.upperBound
        return range
    }

    /// Reads a length-delimited payload as bytes.
    mutating func readBytes() throws -> [UInt8] {
        Array(bytes[try readLengthDelimited()])
    }

    /// A reader over a nested message.
    mutating func readMessage() throws -> ProtobufReader {
        ProtobufReader(bytes, range: try readLengthDelimited())
    }

    /// Skips a field of an unknown or unwanted number. Groups are skipped up to their end tag.
    mutating func skip(_ wireType: WireType, field: UInt64, depth: Int = 0) throws {
        switch wireType {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .startGroup:
            guard depth < 64 else { throw SentencePieceError("groups nested too deeply") }
            while true {
                guard let (inner, innerWire) = try readKey() else {
                    throw SentencePieceError("unterminated group \(field)")
                }
                if innerWire == .endGroup {
                    guard inner == field else { throw SentencePieceError("mismatched end of group \(field)") }
                    return
                }
                try skip(innerWire, field: inner, depth: depth + 1)
            }
        case .endGroup:
            throw SentencePieceError("unexpected end of group \(field) at byte \(position)")
        }
    }
}
