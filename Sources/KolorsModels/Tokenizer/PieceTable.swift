/// A hash map from piece bytes to piece ids that is probed with byte ranges of a buffer,
/// so BPE can look up the concatenation of two adjacent symbols without building a string
/// (plays the part of sentencepiece's `PieceToIdMap`). The first insertion of a key wins.
struct PieceTable: Sendable {
    private var storage: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private var values: [Int32] = []
    /// Open addressing, linear probing; -1 marks an empty slot, otherwise an index into the keys.
    private var slots: [Int32]
    private let mask: Int
    private(set) var maxKeyLength = 0
    var count: Int { values.count }

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = Array(repeating: -1, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func hash(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for i in start..<(start + length) {
            h = (h ^ UInt64(p[i])) &* 0x100_0000_01b3
        }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// Inserts `key` → `value` unless the key is present; returns false if it was.
    @discardableResult
    mutating func insert(_ key: [UInt8], value: Int32) -> Bool {
        let found = key.withUnsafeBufferPointer { lookup($0, start: 0, length: key.count) }
        if found != nil { return false }
        let index = Int32(values.count)
        keyStart.append(Int32(storage.count))
        keyLength.append(Int32(key.count))
        storage.append(contentsOf: key)
        values.append(value)
        maxKeyLength = max(maxKeyLength, key.count)
        var slot = key.withUnsafeBufferPointer { Self.hash($0, 0, key.count) } & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = index
        return true
    }

    /// The id of the piece spelled by `text[start..<start+length]`, or nil.
    @inline(__always)
    func lookup(_ text: UnsafeBufferPointer<UInt8>, start: Int, length: Int) -> Int32? {
        if length > maxKeyLength || values.isEmpty { return nil }
        var slot = Self.hash(text, start, length) & mask
        return storage.withUnsafeBufferPointer { store in
            while true {
                let index = Int(slots[slot])
                if index < 0 { return nil }
                if Int(keyLength[index]) == length {
                    let s = Int(keyStart[index])
                    var equal = true
                    for k in 0..<length where store[s + k] != text[start + k] {
                        equal = false
                        break
                    }
                    if equal { return values[index] }
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func lookup(_ key: [UInt8]) -> Int32? {
        key.withUnsafeBufferPointer { lookup($0, start: 0, length: key.count) }
    }
}
