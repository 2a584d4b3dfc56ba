/// A read-only Darts-clone double-array trie (mirrors `Darts::DoubleArray`'s unit layout and
/// `commonPrefixSearch`), as stored in a SentencePiece `precompiled_charsmap`. Lookups are
/// bounds-checked so a damaged array can only miss, never crash.
struct DoubleArrayTrie: Sendable {
    private let units: [UInt32]

    /// `units` are the little-endian 32-bit words of the array.
    init(units: [UInt32]) {
        self.units = units
    }

    @inline(__always) private static func hasLeaf(_ unit: UInt32) -> Bool { (unit >> 8) & 1 == 1 }
    @inline(__always) private static func value(_ unit: UInt32) -> UInt32 { unit & ((1 << 31) - 1) }
    @inline(__always) private static func label(_ unit: UInt32) -> UInt32 { unit & ((1 << 31) | 0xFF) }
    @inline(__always) private static func offset(_ unit: UInt32) -> UInt32 {
        (unit >> 10) << ((unit & (1 << 9)) >> 6)
    }

    /// The longest key that is a prefix of `text[start..<end]`, as (length, value), looking at
    /// no more than `maxResults` matches like sentencepiece's fixed-size result buffer; nil if
    /// no key matches.
    func longestPrefix(_ text: UnsafeBufferPointer<UInt8>, at start: Int, end: Int,
                       maxResults: Int = 32) -> (length: Int, value: UInt32)? {
        guard !units.isEmpty else { return nil }
        var best: (length: Int, value: UInt32)?
        var found = 0
        var node = Int(Self.offset(units[0]))
        var i = start
        while i < end {
            let c = text[i]
            node ^= Int(c)
            guard node >= 0 && node < units.count else { return best }
            let unit = units[node]
            if Self.label(unit) != UInt32(c) { return best }
            node ^= Int(Self.offset(unit))
            if Self.hasLeaf(unit) {
                guard node >= 0 && node < units.count else { return best }
                if found < maxResults { best = (i - start + 1, Self.value(units[node])) }
                found += 1
            }
            i += 1
        }
        return best
    }
}
