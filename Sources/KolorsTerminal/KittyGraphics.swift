import CZlib
import Foundation

public struct GraphicsError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// zlib (RFC 1950) compression, as the kitty graphics protocol's `o=z` expects.
public enum Zlib {
    public static func compress(_ data: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        var size = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let rc = data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                compress2(dst.baseAddress, &size, src.baseAddress, uLong(src.count), level)
            }
        }
        guard rc == Z_OK else { throw GraphicsError(message: "zlib compress2 failed (\(rc))") }
        out.removeSubrange(Int(size)...)
        return out
    }
}

/// The kitty terminal graphics protocol (`ESC _G <control> ; <base64> ESC \`): kitty, Ghostty,
/// Konsole, WezTerm and others. Images go as raw RGB (`f=24`), zlib-compressed (`o=z`), base64
/// in chunks of at most 4096 bytes (`m=1` on all but the last).
public enum KittyGraphics {
    /// Largest base64 chunk one escape sequence may carry (a multiple of 4).
    public static let chunkSize = 4096

    /// An image ready to send: its pixels compressed and base64-encoded once, sent any number of
    /// times with different ids and placements.
    public struct Payload: Sendable, Equatable {
        public let width: Int
        public let height: Int
        /// base64 of the zlib-compressed RGB888 pixels.
        public let base64: [UInt8]
        public let compressed: Bool
    }

    /// Compresses and encodes `width*height*3` RGB bytes.
    public static func payload(rgb: [UInt8], width: Int, height: Int, compress: Bool = true) throws -> Payload {
        guard width > 0, height > 0, rgb.count == width * height * 3 else {
            throw GraphicsError(message: "kitty: \(rgb.count) bytes do not make a \(width)×\(height) RGB image")
        }
        let data = compress ? try Zlib.compress(rgb) : rgb
        return Payload(width: width, height: height, base64: Array(Data(data).base64EncodedData()), compressed: compress)
    }

    /// Where the image goes once transmitted.
    public enum Placement: Sendable, Equatable {
        /// At the cursor (`a=T`), the cursor not moved (`C=1`); `columns`/`rows` scale it to that
        /// many cells (nil: its own pixel size).
        case atCursor(columns: Int? = nil, rows: Int? = nil)
        /// A virtual placement for Unicode placeholders (`a=T,U=1`) over `columns`×`rows` cells.
        case virtual(columns: Int, rows: Int)
    }

    /// The escape sequences that transmit `payload` as image `id` and place it (placement id
    /// `placement`). `quiet` 2 suppresses every reply, so no answer can reach the application's input.
    public static func transmit(_ payload: Payload, id: UInt32, placement: UInt32, _ where_: Placement,
                                quiet: Int = 2) -> [UInt8] {
        var control = "a=T,f=24,s=\(payload.width),v=\(payload.height)" + (payload.compressed ? ",o=z" : "")
            + ",i=\(id),p=\(placement),q=\(quiet)"
        switch where_ {
        case .atCursor(let columns, let rows):
            control += ",C=1"
            if let columns { control += ",c=\(columns)" }
            if let rows { control += ",r=\(rows)" }
        case .virtual(let columns, let rows):
            control += ",U=1,c=\(columns),r=\(rows)"
        }
        var out: [UInt8] = []
        out.reserveCapacity(payload.base64.count + payload.base64.count / chunkSize * 16 + 128)
        var offset = 0
        var first = true
        repeat {
            let end = min(payload.base64.count, offset + chunkSize)
            let more = end < payload.base64.count
            out += [0x1B, 0x5F, 0x47]                                    // ESC _ G
            out += Array(((first ? control + "," : "") + "m=\(more ? 1 : 0)" + (first ? ";" : ",q=\(quiet);")).utf8)
            out += payload.base64[offset..<end]
            out += [0x1B, 0x5C]                                          // ESC \
            offset = end
            first = false
        } while offset < payload.base64.count
        return out
    }

    /// Deletes image `id` (all its placements, virtual ones too); `free` also drops its data.
    public static func delete(id: UInt32, free: Bool = true) -> [UInt8] {
        Array("\u{1B}_Ga=d,d=\(free ? "I" : "i"),i=\(id),q=2\u{1B}\\".utf8)
    }

    /// The support query: a 1×1 RGB image sent with `a=q` (nothing is stored or shown). A terminal
    /// that speaks the protocol answers `ESC _G i=31;OK ESC \` before its DA1 reply.
    public static let queryID: UInt32 = 31
    public static let query = "\u{1B}_Gi=\(queryID),s=1,v=1,a=q,t=d,f=24;AAAA\u{1B}\\"

    /// True when `reply` holds the terminal's OK to `query`.
    public static func queryAnswered(_ reply: [UInt8]) -> Bool {
        String(decoding: reply, as: UTF8.self).contains("\u{1B}_Gi=\(queryID);OK")
    }

    // MARK: Unicode placeholders

    /// The placeholder character: a cell showing part of an image whose id is the cell's foreground colour.
    public static let placeholder: UInt32 = 0x10EEEE

    /// Row/column diacritics (kitty's rowcolumn-diacritics.txt): the n-th one encodes the number n.
    public static let diacritics: [UInt32] = [
        0x0305, 0x030D, 0x030E, 0x0310, 0x0312, 0x033D, 0x033E, 0x033F, 0x0346, 0x034A, 0x034B, 0x034C, 
        0x0350, 0x0351, 0x0352, 0x0357, 0x035B, 0x0363, 0x0364, 0x0365, 0x0366, 0x0367, 0x0368, 0x0369, 
        0x036A, 0x036B, 0x036C, 0x036D, 0x036E, 0x036F, 0x0483, 0x0484, 0x0485, 0x0486, 0x0487, 0x0592, 
        0x0593, 0x0594, 0x0595, 0x0597, 0x0598, 0x0599, 0x059C, 0x059D, 0x059E, 0x059F, 0x05A0, 0x05A1, 
        0x05A8, 0x05A9, 0x05AB, 0x05AC, 0x05AF, 0x05C4, 0x0610, 0x0611, 0x0612, 0x0613, 0x0614, 0x0615, 
        0x0616, 0x0617, 0x0657, 0x0658, 0x0659, 0x065A, 0x065B, 0x065D, 0x065E, 0x06D6, 0x06D7, 0x06D8, 
        0x06D9, 0x06DA, 0x06DB, 0x06DC, 0x06DF, 0x06E0, 0x06E1, 0x06E2, 0x06E4, 0x06E7, 0x06E8, 0x06EB, 
        0x06EC, 0x0730, 0x0732, 0x0733, 0x0735, 0x0736, 0x073A, 0x073D, 0x073F, 0x0740, 0x0741, 0x0743, 
        0x0745, 0x0747, 0x0749, 0x074A, 0x07EB, 0x07EC, 0x07ED, 0x07EE, 0x07EF, 0x07F0, 0x07F1, 0x07F3, 
        0x0816, 0x0817, 0x0818, 0x0819, 0x081B, 0x081C, 0x081D, 0x081E, 0x081F, 0x0820, 0x0821, 0x0822, 
        0x0823, 0x0825, 0x0826, 0x0827, 0x0829, 0x082A, 0x082B, 0x082C, 0x082D, 0x0951, 0x0953, 0x0954, 
        0x0F82, 0x0F83, 0x0F86, 0x0F87, 0x135D, 0x135E, 0x135F, 0x17DD, 0x193A, 0x1A17, 0x1A75, 0x1A76, 
        0x1A77, 0x1A78, 0x1A79, 0x1A7A, 0x1A7B, 0x1A7C, 0x1B6B, 0x1B6D, 0x1B6E, 0x1B6F, 0x1B70, 0x1B71, 
        0x1B72, 0x1B73, 0x1CD0, 0x1CD1, 0x1CD2, 0x1CDA, 0x1CDB, 0x1CE0, 0x1DC0, 0x1DC1, 0x1DC3, 0x1DC4, 
        0x1DC5, 0x1DC6, 0x1DC7, 0x1DC8, 0x1DC9, 0x1DCB, 0x1DCC, 0x1DD1, 0x1DD2, 0x1DD3, 0x1DD4, 0x1DD5, 
        0x1DD6, 0x1DD7, 0x1DD8, 0x1DD9, 0x1DDA, 0x1DDB, 0x1DDC, 0x1DDD, 0x1DDE, 0x1DDF, 0x1DE0, 0x1DE1, 
        0x1DE2, 0x1DE3, 0x1DE4, 0x1DE5, 0x1DE6, 0x1DFE, 0x20D0, 0x20D1, 0x20D4, 0x20D5, 0x20D6, 0x20D7, 
        0x20DB, 0x20DC, 0x20E1, 0x20E7, 0x20E9, 0x20F0, 0x2CEF, 0x2CF0, 0x2CF1, 0x2DE0, 0x2DE1, 0x2DE2, 
        0x2DE3, 0x2DE4, 0x2DE5, 0x2DE6, 0x2DE7, 0x2DE8, 0x2DE9, 0x2DEA, 0x2DEB, 0x2DEC, 0x2DED, 0x2DEE, 
        0x2DEF, 0x2DF0, 0x2DF1, 0x2DF2, 0x2DF3, 0x2DF4, 0x2DF5, 0x2DF6, 0x2DF7, 0x2DF8, 0x2DF9, 0x2DFA, 
        0x2DFB, 0x2DFC, 0x2DFD, 0x2DFE, 0x2DFF, 0xA66F, 0xA67C, 0xA67D, 0xA6F0, 0xA6F1, 0xA8E0, 0xA8E1, 
        0xA8E2, 0xA8E3, 0xA8E4, 0xA8E5, 0xA8E6, 0xA8E7, 0xA8E8, 0xA8E9, 0xA8EA, 0xA8EB, 0xA8EC, 0xA8ED, 
        0xA8EE, 0xA8EF, 0xA8F0, 0xA8F1, 0xAAB0, 0xAAB2, 0xAAB3, 0xAAB7, 0xAAB8, 0xAABE, 0xAABF, 0xAAC1, 
        0xFE20, 0xFE21, 0xFE22, 0xFE23, 0xFE24, 0xFE25, 0xFE26, 0x10A0F, 0x10A38, 0x1D185, 0x1D186, 0x1D187, 
        0x1D188, 0x1D189, 0x1D1AA, 0x1D1AB, 0x1D1AC, 0x1D1AD, 0x1D242, 0x1D243, 0x1D244
    ]

    /// The scalars of the placeholder cell at (`row`, `column`) of an image: U+10EEEE, the row
    /// diacritic, the column diacritic. Nil when the image is larger than the table can address.
    public static func placeholderCell(row: Int, column: Int) -> [UInt32]? {
        guard row >= 0, column >= 0, row < diacritics.count, column < diacritics.count else { return nil }
        return [placeholder, diacritics[row], diacritics[column]]
    }
}
