import Foundation

// Small hostile files made inside the tests (no large fixtures): raw PNG chunks with their
// CRCs, deflate streams that inflate to megabytes from a few kB, a seeded random generator
// for the mutation tests, and checkpoint copies whose files can be replaced one at a time.

/// A deterministic random generator (SplitMix64), so every fuzz run sees the same inputs.
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// PNG files byte by byte: any chunk, valid or not.
public enum PNGBytes {
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    /// One chunk; `declaredLength` overrides the length field (the data is written as given).
    public static func chunk(_ type: String, _ data: [UInt8], declaredLength: UInt32? = nil) -> [UInt8] {
        let t = Array(type.utf8)
        return be32(declaredLength ?? UInt32(data.count)) + t + data + be32(crc32(t + data))
    }

    public static func ihdr(width: UInt32, height: UInt32) -> [UInt8] {
        chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])  // 8-bit RGB, not interlaced
    }

    /// A zlib stream of `data` in stored (uncompressed) blocks.
    public static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65535, data.count - i)
            let final: UInt8 = i + n == data.count ? 1 : 0
            out += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[i..<(i + n)]
            i += n
        } while i < data.count
        return out + be32(adler32(repeating: nil, data: data))
    }

    /// A zlib stream that inflates to `count` copies of `byte` (count ≥ 1): one literal, then
    /// back-references of 258 bytes at distance 1 in fixed Huffman codes (13 bits per 258
    /// bytes, about 1:160), the rest as literals. A decompression bomb of a few kB.
    public static func zlibRepeated(_ byte: UInt8, count: Int) -> [UInt8] {
        var bits = BitWriter()
        bits.write(1, 1)            // BFINAL
        bits.write(1, 2)            // BTYPE = 01: fixed Huffman
        func literal(_ b: UInt8) {  // 0–143: 8-bit codes 0x30…; 144–255: 9-bit codes 0x190…
            if b < 144 { bits.writeReversed(0x30 + UInt32(b), 8) } else { bits.writeReversed(0x190 + UInt32(b) - 144, 9) }
        }
        literal(byte)
        var left = count - 1
        while left >= 258 {
            bits.writeReversed(0xC5, 8)  // length code 285 (258): 8-bit code 11000101
            bits.writeReversed(0, 5)     // distance code 0 (distance 1)
            left -= 258
        }
        for _ in 0..<left { literal(byte) }
        bits.writeReversed(0, 7)         // end of block (256): 7-bit code 0
        return [0x78, 0x01] + bits.bytes + be32(adler32(repeating: (byte, count), data: []))
    }

    static func adler32(repeating: (UInt8, Int)?, data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        if let (byte, count) = repeating {
            for _ in 0..<count { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        }
        for x in data { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        return b << 16 | a
    }

    /// A complete small RGB PNG (all pixels `value`) with `chunks` between IHDR and IDAT.
    public static func png(width: UInt32 = 8, height: UInt32 = 8, value: UInt8 = 128, before chunks: [[UInt8]] = [],
                           after: [[UInt8]] = []) -> [UInt8] {
        var raw: [UInt8] = []
        for _ in 0..<height { raw += [0] + [UInt8](repeating: value, count: Int(width) * 3) }
        return signature + ihdr(width: width, height: height) + chunks.joined() + chunk("IDAT", zlibStored(raw))
            + after.joined() + chunk("IEND", [])
    }

    /// A tEXt chunk (Latin-1 key and value).
    public static func text(_ key: String, _ value: String) -> [UInt8] {
        chunk("tEXt", Array(key.utf8) + [0] + value.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
    }

    /// An iTXt chunk (uncompressed UTF-8).
    public static func itxt(_ key: String, _ value: String) -> [UInt8] {
        chunk("iTXt", Array(key.utf8) + [0, 0, 0, 0, 0] + Array(value.utf8))
    }
}

/// Bits in deflate's order: each byte filled from its least significant bit.
struct BitWriter {
    var bytes: [UInt8] = []
    private var used = 8  // bits used in the last byte (8: start a new one)

    private mutating func push(_ bit: UInt32) {
        if used == 8 { bytes.append(0); used = 0 }
        bytes[bytes.count - 1] |= UInt8(bit) << UInt8(used)
        used += 1
    }

    /// `count` bits of `value`, least significant first (header fields, extra bits).
    mutating func write(_ value: UInt32, _ count: Int) {
        for i in 0..<count { push((value >> UInt32(i)) & 1) }
    }

    /// A Huffman code, most significant bit first.
    mutating func writeReversed(_ code: UInt32, _ count: Int) {
        for i in stride(from: count - 1, through: 0, by: -1) { push((code >> UInt32(i)) & 1) }
    }
}

/// A copy of a checkpoint folder made of symbolic links to the original files (cheap), in
/// which single files can be replaced by mutated ones.
public final class CheckpointCopy {
    public let path: String
    private let source: String
    private let dir: TemporaryDirectory

    public init(of source: String) throws {
        self.source = source
        dir = try TemporaryDirectory()
        path = dir.path + "/model"
        let fm = FileManager.default
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
        for relative in try fm.subpathsOfDirectory(atPath: source).sorted() {
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: source + "/" + relative, isDirectory: &isDir)
            if isDir.boolValue {
                try fm.createDirectory(atPath: path + "/" + relative, withIntermediateDirectories: true)
            } else {
                try fm.createSymbolicLink(atPath: path + "/" + relative, withDestinationPath: source + "/" + relative)
            }
        }
    }

    /// The original bytes of a file (from the source, whatever the copy holds now).
    public func original(_ relative: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: source + "/" + relative))
    }

    /// Replaces a file (a real file from now on).
    public func replace(_ relative: String, with data: Data) throws {
        let p = path + "/" + relative
        try? FileManager.default.removeItem(atPath: p)
        try data.write(to: URL(fileURLWithPath: p))
    }

    /// Edits a JSON file: `edit` gets the parsed object and returns the new one.
    public func editJSON(_ relative: String, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try JSONSerialization.jsonObject(with: try original(relative)) as? [String: Any] ?? [:]
        edit(&object)
        try replace(relative, with: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// Replaces a JSON file with raw text (for values JSONSerialization cannot write).
    public func replaceText(_ relative: String, _ text: String) throws {
        try replace(relative, with: Data(text.utf8))
    }
}
