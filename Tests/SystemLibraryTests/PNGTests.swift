import Foundation
import KolorsImageIO
import Testing

@Suite("libpng")
struct PNGTests {
    @Test("an RGB image and its text chunks round-trip byte-exact")
    func roundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-png-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = 37, h = 23
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for i in px.indices { px[i] = UInt8((i * 7919 + i / 3) & 0xFF) }
        let image = RGBImage(width: w, height: h, pixels: px)
        let texts = [
            PNGText.automatic(key: "parameters", value: "a café at dawn\nSteps: 25, Seed: 66"),
            PNGText.automatic(key: "prompt-zh", value: "一只可爱的小猫, 4K 🐱"),
            PNGText(key: "compressed", value: String(repeating: "abc ", count: 100), kind: .compressedText),
        ]
        #expect(texts[0].kind == .text)
        #expect(texts[1].kind == .international)
        let path = dir.appendingPathComponent("x.png").path
        try PNGFile.write(image, to: path, texts: texts)
        let (back, backTexts) = try PNGFile.read(path)
        #expect(back == image)
        #expect(backTexts == texts)
        let header = try PNGFile.readText(path)
        #expect(header.width == w && header.height == h)
        #expect(header.texts == texts)
        // no temporary file left behind
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(names == ["x.png"])
        // the file on disk is a real PNG: signature and IHDR
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    }

    @Test("reading garbage and missing files throws a readable error")
    func errors() throws {
        let dir = FileManager.default.temporaryDirectory
        let path = dir.appendingPathComponent("kolors-not-a-png-\(UUID().uuidString).png").path
        try Data("definitely not a png".utf8).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        #expect(throws: PNGError.self) { try PNGFile.read(path) }
        #expect(throws: PNGError.self) { try PNGFile.read("/nonexistent/dir/x.png") }
        do {
            _ = try PNGFile.read(path)
        } catch {
            #expect("\(error)".contains("not a PNG"))
        }
    }

    @Test("a truncated PNG is refused, not crashed on")
    func truncated() throws {
        let dir = FileManager.default.temporaryDirectory
        let path = dir.appendingPathComponent("kolors-trunc-\(UUID().uuidString).png").path
        defer { unlink(path) }
        let image = RGBImage(width: 64, height: 64, pixels: (0..<(64 * 64 * 3)).map { UInt8($0 % 251) })
        try PNGFile.write(image, to: path)
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: path))
        #expect(throws: PNGError.self) { try PNGFile.read(path) }
    }
}
