import CKolorsPNG
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One PNG text chunk. Values are Swift strings; the chunk kind says how it is stored.
public struct PNGText: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case text, compressedText, international }
    public var key: String
    public var value: String
    public var kind: Kind

    public init(key: String, value: String, kind: Kind) {
        self.key = key
        self.value = value
        self.kind = kind
    }

    /// The chunk a careful writer picks: tEXt when the value is Latin-1, iTXt (UTF-8) otherwise.
    public static func automatic(key: String, value: String) -> PNGText {
        PNGText(key: key, value: value, kind: value.unicodeScalars.allSatisfy { $0.value <= 0xFF } ? .text : .international)
    }
}

public struct PNGError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

/// PNG files through libpng, with text metadata (tEXt, zTXt, iTXt).
public enum PNGFile {
    /// Writes `image` with `texts`. With `atomically` (the default) the image goes to a temporary
    /// file in the same folder first (see `TemporaryFiles`), is flushed to disk and then renamed
    /// over `path`, so a crash never leaves a half-written PNG under the final name. Without
    /// `overwrite` an existing file at `path` is never replaced (the write throws).
    public static func write(_ image: RGBImage, to path: String, texts: [PNGText] = [], atomically: Bool = true,
                             overwrite: Bool = true) throws {
        for t in texts where t.key.isEmpty || t.key.utf8.count > 79 || !t.key.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value <= 0xFF }) {
            throw PNGError(path: path, message: "invalid text chunk key '\(t.key)' (1–79 Latin-1 characters)")
        }
        if !atomically && !overwrite && access(path, F_OK) == 0 {
            throw PNGError(path: path, message: "already exists (not replaced)")
        }
        let target = atomically ? try TemporaryFiles.create(for: path) : path
        // Encoded values must outlive the C call: keep them in arrays of byte arrays.
        let keys: [[CChar]] = texts.map { latin1CString($0.key) }
        let values: [[CChar]] = texts.map { t in
            switch t.kind {
            case .international: return t.value.utf8.map { CChar(bitPattern: $0) } + [0]
            case .text, .compressedText:
                guard t.value.unicodeScalars.allSatisfy({ $0.value <= 0xFF }) else {
                    return [] // marked below
                }
                return latin1CString(t.value)
            }
        }
        if let bad = zip(texts, values).first(where: { $0.1.isEmpty }) {
            if atomically { TemporaryFiles.discard(target) }
            throw PNGError(path: path, message: "text chunk '\(bad.0.key)' is not Latin-1; store it as iTXt")
        }
        var err = [CChar](repeating: 0, count: 256)
        let rc: Int32 = withCStringArrays(keys) { keyPtrs in
            withCStringArrays(values) { valuePtrs in
                var chunks: [kp_text_in] = []
                for i in texts.indices {
                    let kind: Int32 = switch texts[i].kind {
                    case .text: Int32(KP_TEXT)
                    case .compressedText: Int32(KP_ZTXT)
                    case .international: Int32(KP_ITXT)
                    }
                    chunks.append(kp_text_in(key: keyPtrs[i], value: valuePtrs[i],
                                             value_length: values[i].count - 1, kind: kind))
                }
                return image.pixels.withUnsafeBufferPointer { px in
                    chunks.withUnsafeBufferPointer { ch in
                        kp_write(target, px.baseAddress, UInt32(image.width), UInt32(image.height), 3,
                                 ch.baseAddress, ch.count, &err, err.count)
                    }
                }
            }
        }
        if rc != 0 {
            if atomically { TemporaryFiles.discard(target) }
            throw PNGError(path: path, message: cMessage(err))
        }
        if atomically {
            try TemporaryFiles.commit(target, to: path, overwrite: overwrite)
        }
    }

    /// The default bound on width × height for `read`: 8192² (192 MiB of RGB).
    public static let defaultMaxPixels = 1 << 26

    /// Reads a PNG as 8-bit RGB (alpha dropped, grey and palettes expanded) and, with `texts`,
    /// its text chunks (without, they are skipped unread). Images over `maxPixels` are refused
    /// before their pixels are decoded.
    public static func read(_ path: String, maxPixels: Int = defaultMaxPixels,
                            texts wantTexts: Bool = true) throws -> (image: RGBImage, texts: [PNGText]) {
        var img = kp_image()
        var err = [CChar](repeating: 0, count: 256)
        guard kp_read(path, UInt64(max(0, maxPixels)), wantTexts ? 1 : 0, &img, &err, err.count) == 0 else {
            throw PNGError(path: path, message: cMessage(err))
        }
        defer { kp_image_free(&img) }
        let count = Int(img.width) * Int(img.height) * 3
        let pixels = [UInt8](UnsafeBufferPointer(start: img.rgb, count: count))
        return (RGBImage(width: Int(img.width), height: Int(img.height), pixels: pixels), texts(of: img))
    }

    /// Reads only the size and the text chunks stored before the image data (where every
    /// common writer puts them); no pixels are decoded.
    public static func readText(_ path: String) throws -> (width: Int, height: Int, texts: [PNGText]) {
        var img = kp_image()
        var err = [CChar](repeating: 0, count: 256)
        guard kp_read_text(path, &img, &err, err.count) == 0 else {
            throw PNGError(path: path, message: cMessage(err))
        }
        defer { kp_image_free(&img) }
        return (Int(img.width), Int(img.height), texts(of: img))
    }

    // MARK: - helpers

    private static func texts(of img: kp_image) -> [PNGText] {
        var out: [PNGText] = []
        for i in 0..<img.ntext {
            let key = decodeLatin1(UnsafeBufferPointer(start: UnsafeRawPointer(img.keys[i]!).assumingMemoryBound(to: UInt8.self),
                                                       count: strlen(img.keys[i]!)))
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(img.values[i]!).assumingMemoryBound(to: UInt8.self),
                                            count: img.lengths[i])
            let kind: PNGText.Kind
            let value: String
            switch img.kinds[i] {
            case Int32(KP_ITXT):
                kind = .international
                value = String(decoding: bytes, as: UTF8.self)
            default:
                kind = img.kinds[i] == Int32(KP_ZTXT) ? .compressedText : .text
                // Some tools write raw UTF-8 into tEXt: accept it when it decodes cleanly.
                if bytes.contains(where: { $0 >= 0x80 }), let utf8 = String(validating: bytes, as: UTF8.self) {
                    value = utf8
                } else {
                    value = decodeLatin1(bytes)
                }
            }
            out.append(PNGText(key: key, value: value, kind: kind))
        }
        return out
    }

    /// Latin-1 to a String in one pass: the UTF-8 bytes are built in bulk (ASCII copied, every
    /// byte ≥ 0x80 as two bytes), not one scalar append at a time.
    private static func decodeLatin1(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var utf8: [UInt8] = []
        utf8.reserveCapacity(bytes.count + bytes.count / 4)
        for b in bytes {
            if b < 0x80 {
                utf8.append(b)
            } else {
                utf8.append(0xC0 | (b >> 6))
                utf8.append(0x80 | (b & 0x3F))
            }
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    private static func latin1CString(_ s: String) -> [CChar] {
        s.unicodeScalars.map { CChar(bitPattern: UInt8(truncatingIfNeeded: $0.value)) } + [0]
    }

    private static func withCStringArrays<R>(_ arrays: [[CChar]], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>] = []
        defer { pointers.forEach { $0.deallocate() } }
        for a in arrays {
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: max(a.count, 1))
            if !a.isEmpty { p.initialize(from: a, count: a.count) } else { p.initialize(to: 0) }
            pointers.append(p)
        }
        return body(pointers.map { UnsafePointer($0) })
    }
}

/// The text of a NUL-terminated C buffer.
func cMessage(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
