/// UTF-8 helpers that behave exactly like sentencepiece's `string_util` (`OneCharLen`,
/// `DecodeUTF8`, `IsValidDecodeUTF8`), including what they call invalid.
enum UTF8Decoding {
    /// The sequence length announced by a lead byte (1 for ASCII and for stray bytes).
    @inline(__always)
    static func oneCharLength(_ byte: UInt8) -> Int {
        switch byte >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }

    @inline(__always)
    private static func isTrail(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }

    @inline(__always)
    private static func isValidScalar(_ c: UInt32) -> Bool { c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF) }

    /// Length of the valid UTF-8 character at `start`, or nil for a malformed byte (which
    /// sentencepiece replaces by U+FFFD, consuming one byte).
    @inline(__always)
    static func validCharLength(_ s: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> Int? {
        let b0 = s[start]
        let available = end - start
        if b0 < 0x80 { return 1 }
        if available >= 2 && b0 & 0xE0 == 0xC0 {
            let b1 = s[start + 1]
            let c = (UInt32(b0 & 0x1F) << 6) | UInt32(b1 & 0x3F)
            if isTrail(b1) && c >= 0x80 && isValidScalar(c) { return 2 }
        } else if available >= 3 && b0 & 0xF0 == 0xE0 {
            let b1 = s[start + 1], b2 = s[start + 2]
            let c = (UInt32(b0 & 0x0F) << 12) | (UInt32(b1 & 0x3F) << 6) | UInt32(b2 & 0x3F)
            if isTrail(b1) && isTrail(b2) && c >= 0x800 && isValidScalar(c) { return 3 }
        } else if available >= 4 && b0 & 0xF8 == 0xF0 {
            let b1 = s[start + 1], b2 = s[start + 2], b3 = s[start + 3]
            let c = (UInt32(b0 & 0x07) << 18) | (UInt32(b1 & 0x3F) << 12) | (UInt32(b2 & 0x3F) << 6)
                | UInt32(b3 & 0x3F)
            if isTrail(b1) && isTrail(b2) && isTrail(b3) && c >= 0x10000 && isValidScalar(c) { return 4 }
        }
        return nil
    }
}
