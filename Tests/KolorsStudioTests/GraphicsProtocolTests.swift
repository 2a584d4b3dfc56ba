import CZlib
import Foundation
import KolorsImageIO
@testable import KolorsStudio
import KolorsTerminal
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// An independent reader of what the encoders write: splits escape sequences, undoes tmux
/// passthrough, reassembles kitty chunks, base64-decodes, inflates and PNG-decodes.
enum GraphicsDecoder {
    struct KittyCommand { var control: [String: String]; var payload: [UInt8] }

    /// Undoes every `ESC P tmux; … ESC \` wrapper (doubled ESCs become single); other bytes stay.
    static func unwrapTmux(_ bytes: [UInt8]) -> [UInt8] {
        let open: [UInt8] = Array("\u{1B}Ptmux;".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if i + open.count <= bytes.count, Array(bytes[i..<(i + open.count)]) == open {
                i += open.count
                while i < bytes.count {
                    if bytes[i] == 0x1B, i + 1 < bytes.count, bytes[i + 1] == 0x1B { out.append(0x1B); i += 2; continue }
                    if bytes[i] == 0x1B, i + 1 < bytes.count, bytes[i + 1] == 0x5C { i += 2; break }
                    out.append(bytes[i]); i += 1
                }
                continue
            }
            out.append(bytes[i]); i += 1
        }
        return out
    }

    /// Every `ESC _ G control ; payload ESC \` in order.
    static func kittyCommands(_ bytes: [UInt8]) -> [KittyCommand] {
        var cmds: [KittyCommand] = []
        var i = 0
        while i + 2 < bytes.count {
            guard bytes[i] == 0x1B, bytes[i + 1] == 0x5F, bytes[i + 2] == 0x47 else { i += 1; continue }
            var j = i + 3
            while j + 1 < bytes.count, !(bytes[j] == 0x1B && bytes[j + 1] == 0x5C) { j += 1 }
            let body = Array(bytes[(i + 3)..<j])
            let semi = body.firstIndex(of: UInt8(ascii: ";")) ?? body.count
            var control: [String: String] = [:]
            for kv in String(decoding: body[..<semi], as: UTF8.self).split(separator: ",") {
                let p = kv.split(separator: "=", maxSplits: 1)
                if p.count == 2 { control[String(p[0])] = String(p[1]) }
            }
            cmds.append(KittyCommand(control: control, payload: semi < body.count ? Array(body[(semi + 1)...]) : []))
            i = j + 2
        }
        return cmds
    }

    static func inflate(_ data: [UInt8], expected: Int) -> [UInt8]? {
        var size = uLong(expected)
        var out = [UInt8](repeating: 0, count: max(1, expected))
        let rc = data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in uncompress(dst.baseAddress, &size, src.baseAddress, uLong(src.count)) }
        }
        guard rc == Z_OK, Int(size) == expected else { return nil }
        return out
    }

    /// The image the kitty commands starting at `first` transmit: (control of the first chunk, RGB pixels).
    static func kittyImage(_ cmds: [KittyCommand]) -> (control: [String: String], rgb: [UInt8])? {
        guard let first = cmds.first, let w = first.control["s"].flatMap(Int.init), let h = first.control["v"].flatMap(Int.init) else { return nil }
        var b64: [UInt8] = []
        for c in cmds {
            b64 += c.payload
            if c.control["m"] == "0" { break }
        }
        guard let data = Data(base64Encoded: Data(b64)) else { return nil }
        let raw = first.control["o"] == "z" ? inflate(Array(data), expected: w * h * 3) : Array(data)
        guard let raw, raw.count == w * h * 3 else { return nil }
        return (first.control, raw)
    }

    /// iTerm2: `ESC ] 1337 ; File = args : base64 BEL` → (arguments, decoded PNG).
    static func iterm(_ bytes: [UInt8]) -> (args: [String: String], image: RGBImage)? {
        let s = String(decoding: bytes, as: UTF8.self)
        guard let start = s.range(of: "\u{1B}]1337;File="), let colon = s[start.upperBound...].firstIndex(of: ":"),
              let bel = s[colon...].firstIndex(of: "\u{07}") else { return nil }
        var args: [String: String] = [:]
        for kv in s[start.upperBound..<colon].split(separator: ";") {
            let p = kv.split(separator: "=", maxSplits: 1)
            if p.count == 2 { args[String(p[0])] = String(p[1]) }
        }
        guard let png = Data(base64Encoded: String(s[s.index(after: colon)..<bel])),
              let img = try? PNGFile.decode(Array(png)) else { return nil }
        if let size = args["size"].flatMap(Int.init), size != png.count { return nil }
        return (args, img)
    }
}

@Suite("Graphics protocols: kitty, iTerm2, tmux passthrough")
struct GraphicsProtocolTests {
    /// Pixels that neither compress to nothing nor repeat: every byte matters.
    static func pattern(_ w: Int, _ h: Int, noise: Bool = false) -> [UInt8] {
        var px = [UInt8](repeating: 0, count: w * h * 3)
        var seed: UInt32 = 0x1234_5678
        for y in 0..<h {
            for x in 0..<w {
                let i = (y * w + x) * 3
                if noise {
                    for c in 0..<3 { seed = seed &* 1_664_525 &+ 1_013_904_223; px[i + c] = UInt8(truncatingIfNeeded: seed >> 24) }
                } else {
                    px[i] = UInt8(x * 255 / max(1, w - 1)); px[i + 1] = UInt8(y * 255 / max(1, h - 1)); px[i + 2] = UInt8((x ^ y) & 0xFF)
                }
            }
        }
        return px
    }

    @Test("kitty: f=24 o=z chunks of ≤ 4096 base64 bytes decode back to the same pixels; ids, placement, C=1, q=2")
    func kittyRoundTrip() throws {
        for (w, h, noise) in [(123, 77, false), (300, 200, true), (1, 1, false)] {
            let px = Self.pattern(w, h, noise: noise)
            let payload = try KittyGraphics.payload(rgb: px, width: w, height: h)
            let bytes = KittyGraphics.transmit(payload, id: 0x4B53_0004, placement: 1, .atCursor())
            let cmds = GraphicsDecoder.kittyCommands(bytes)
            #expect(!cmds.isEmpty)
            for (k, c) in cmds.enumerated() {
                #expect(c.payload.count <= 4096, "chunk \(k): \(c.payload.count) bytes")
                let last = k == cmds.count - 1
                #expect(c.control["m"] == (last ? "0" : "1"))
                if !last { #expect(c.payload.count % 4 == 0) }
                if k > 0 { #expect(Set(c.control.keys).isSubset(of: ["m", "q"]), "later chunks carry only m and q: \(c.control)") }
            }
            if noise { #expect(cmds.count > 10, "noise does not compress: many chunks (\(cmds.count))") }
            let decoded = try #require(GraphicsDecoder.kittyImage(cmds))
            #expect(decoded.rgb == px, "\(w)×\(h): pixels survive base64 + zlib + chunking")
            let c = decoded.control
            #expect(c["a"] == "T" && c["f"] == "24" && c["o"] == "z" && c["s"] == "\(w)" && c["v"] == "\(h)")
            #expect(c["i"] == "\(0x4B53_0004)" && c["p"] == "1" && c["C"] == "1" && c["q"] == "2" && c["U"] == nil)
        }
    }

    @Test("kitty: a virtual placement for Unicode placeholders, deletion, the query")
    func kittyVirtualDeleteQuery() throws {
        let px = Self.pattern(40, 30)
        let bytes = KittyGraphics.transmit(try KittyGraphics.payload(rgb: px, width: 40, height: 30), id: 42, placement: 1,
                                           .virtual(columns: 4, rows: 2))
        let cmds = GraphicsDecoder.kittyCommands(bytes)
        let d = try #require(GraphicsDecoder.kittyImage(cmds))
        #expect(d.rgb == px)
        #expect(d.control["U"] == "1" && d.control["c"] == "4" && d.control["r"] == "2" && d.control["i"] == "42" && d.control["C"] == nil)
        let del = GraphicsDecoder.kittyCommands(KittyGraphics.delete(id: 42))
        #expect(del.count == 1 && del[0].control == ["a": "d", "d": "I", "i": "42", "q": "2"])
        let q = GraphicsDecoder.kittyCommands(Array(KittyGraphics.query.utf8))
        #expect(q.count == 1 && q[0].control["a"] == "q" && q[0].control["i"] == "31")
        #expect(Data(base64Encoded: Data(q[0].payload)).map(Array.init) == [0, 0, 0], "a 1×1 black RGB pixel")
        #expect(KittyGraphics.queryAnswered(Array("\u{1B}_Gi=31;OK\u{1B}\\".utf8)))
        #expect(!KittyGraphics.queryAnswered(Array("\u{1B}_Gi=31;ENOTSUPPORTED:no\u{1B}\\".utf8)))
    }

    @Test("kitty placeholders: U+10EEEE with row and column diacritics from kitty's table")
    func placeholders() throws {
        #expect(KittyGraphics.diacritics.count == 297)
        #expect(Set(KittyGraphics.diacritics).count == 297)
        // the numbers the protocol's examples use: 0 → U+0305, 1 → U+030D, 2 → U+030E
        #expect(Array(KittyGraphics.diacritics.prefix(3)) == [0x0305, 0x030D, 0x030E])
        for d in KittyGraphics.diacritics {
            let s = try #require(Unicode.Scalar(d))
            #expect(s.properties.generalCategory == .nonspacingMark, "U+\(String(d, radix: 16)) combines")
            #expect(s.properties.canonicalCombiningClass.rawValue == 230, "U+\(String(d, radix: 16)) sits above")
        }
        #expect(KittyGraphics.placeholderCell(row: 1, column: 2) == [0x10EEEE, 0x030D, 0x030E])
        #expect(KittyGraphics.placeholderCell(row: 297, column: 0) == nil)
    }

    @Test("iTerm2: OSC 1337 File= carries a PNG of the same pixels, sized in cells, doNotMoveCursor=1")
    func itermRoundTrip() throws {
        let px = Self.pattern(97, 61)
        let png = try PNGFile.encode(RGBImage(width: 97, height: 61, pixels: px))
        let seq = ITerm2Image.sequence(png: png, columns: 10, rows: 4)
        #expect(seq.last == 0x07)
        let d = try #require(GraphicsDecoder.iterm(seq))
        #expect(d.image.width == 97 && d.image.height == 61 && d.image.pixels == px)
        #expect(d.args["inline"] == "1" && d.args["width"] == "10" && d.args["height"] == "4")
        #expect(d.args["preserveAspectRatio"] == "1" && d.args["doNotMoveCursor"] == "1")
        #expect(d.args["size"] == "\(png.count)")
    }

    @Test("tmux passthrough: every ESC doubled, the payload comes back whole (kitty and iTerm2)")
    func tmuxWrapping() throws {
        #expect(Passthrough.tmux([0x1B, 0x50, 0x71, 0x1B, 0x5C]) == Array("\u{1B}Ptmux;".utf8) + [0x1B, 0x1B, 0x50, 0x71, 0x1B, 0x1B, 0x5C, 0x1B, 0x5C])
        let px = Self.pattern(200, 150, noise: true)
        let kitty = KittyGraphics.transmit(try KittyGraphics.payload(rgb: px, width: 200, height: 150), id: 7, placement: 1, .atCursor())
        let wrapped = Passthrough.tmux(kitty)
        // inside the wrapper no lone ESC is left that could end it early
        let inner = wrapped[7..<(wrapped.count - 2)]
        var k = inner.startIndex
        while k < inner.endIndex {
            if inner[k] == 0x1B { #expect(inner[k + 1] == 0x1B); k += 2 } else { k += 1 }
        }
        #expect(GraphicsDecoder.unwrapTmux(wrapped) == kitty)
        #expect(GraphicsDecoder.kittyImage(GraphicsDecoder.kittyCommands(GraphicsDecoder.unwrapTmux(wrapped)))?.rgb == px)
        let png = try PNGFile.encode(RGBImage(width: 200, height: 150, pixels: px))
        let iterm = Passthrough.tmux(ITerm2Image.sequence(png: png, columns: 20, rows: 8))
        #expect(GraphicsDecoder.iterm(GraphicsDecoder.unwrapTmux(iterm))?.image.pixels == px)
    }

    @Test("the byte budget: KOLORS_PREVIEW_BUDGET, else KOLORS_SIXEL_BUDGET, else 4 MB/s")
    func budget() {
        #expect(ImagePresenter.budget(environment: [:]) == 4_000_000)
        #expect(ImagePresenter.budget(environment: ["KOLORS_SIXEL_BUDGET": "100000"]) == 100_000)
        #expect(ImagePresenter.budget(environment: ["KOLORS_SIXEL_BUDGET": "100000", "KOLORS_PREVIEW_BUDGET": "250000"]) == 250_000)
        #expect(ImagePresenter.budget(environment: ["KOLORS_PREVIEW_BUDGET": "junk"]) == 4_000_000)
    }
}
