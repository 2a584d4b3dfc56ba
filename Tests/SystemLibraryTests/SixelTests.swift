import KolorsTerminal
import Testing

@Suite("libsixel")
struct SixelTests {
    /// A smooth gradient with a few flat patches, like a preview frame.
    static func testImage(width: Int, height: Int) -> [UInt8] {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                px[i] = UInt8(x * 255 / (width - 1))
                px[i + 1] = UInt8(y * 255 / (height - 1))
                px[i + 2] = (x / 8 + y / 8) % 2 == 0 ? 200 : 40
            }
        }
        return px
    }

    @Test("an RGB image encodes to sixel and decodes back within tolerance")
    func roundTripAdaptive() throws {
        let w = 64, h = 48
        let px = Self.testImage(width: w, height: h)
        let sixel = try Sixel.encode(rgb: px, width: w, height: h, palette: .adaptive(colors: 256), diffuse: false)
        // DCS introducer … ST terminator
        #expect(sixel.starts(with: [0x1B, 0x50]) || sixel.first == 0x90)
        #expect(sixel.suffix(2) == [0x1B, 0x5C] || sixel.last == 0x9C)
        let (rgb, dw, dh) = try Sixel.decode(sixel)
        #expect(dw == w && dh == h)
        var total = 0.0
        var worst = 0
        for i in px.indices {
            let d = abs(Int(px[i]) - Int(rgb[i]))
            total += Double(d)
            worst = max(worst, d)
        }
        let mean = total / Double(px.count)
        // libsixel's palette is 0–100% per channel (255 maps to about 252), plus quantisation.
        #expect(mean < 8, "mean abs error \(mean)")
        #expect(worst < 48, "worst channel error \(worst)")
    }

    @Test("the fixed xterm palette path works too")
    func roundTripXterm() throws {
        let w = 40, h = 30
        let px = Self.testImage(width: w, height: h)
        let sixel = try Sixel.encode(rgb: px, width: w, height: h, palette: .xterm256, diffuse: false)
        let (rgb, dw, dh) = try Sixel.decode(sixel)
        #expect(dw == w && dh == h)
        var total = 0.0
        for i in px.indices { total += Double(abs(Int(px[i]) - Int(rgb[i]))) }
        #expect(total / Double(px.count) < 24)
    }

    @Test("bad input is refused")
    func badInput() {
        #expect(throws: SixelError.self) { try Sixel.encode(rgb: [1, 2, 3], width: 2, height: 2) }
    }
}
