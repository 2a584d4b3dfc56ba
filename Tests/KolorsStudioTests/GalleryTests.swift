import Foundation
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import Testing

@Suite("Gallery sessions")
struct GalleryTests {
    static func tempDir() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-gallery-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func image(_ v: UInt8) -> RGBImage { RGBImage(width: 8, height: 8, pixels: [UInt8](repeating: v, count: 192)) }

    static func record(_ i: Int) -> ImageRecord {
        ImageRecord(parameters: GenerationParameters(prompt: "图 \(i), a cat", negativePrompt: i % 2 == 0 ? "blur" : "",
                                                     steps: 20 + i, seed: UInt64(100 + i), scheduler: "dpm++2m-karras"),
                    batchIndex: 0, created: "2025-01-0\(i)T00:00:00Z", seconds: Double(i))
    }

    /// Makes a session with `n` images; returns its folder and entries.
    static func populated(_ n: Int) throws -> (String, [GalleryEntry]) {
        let root = try tempDir()
        let dir = root + "/session"
        let s = GallerySession(directory: dir)
        for i in 1...n { try s.add(image: image(UInt8(i)), record: record(i)) }
        return (dir, s.entries)
    }

    @Test("images and the journal round-trip; favourites and deletes persist")
    func roundTrip() throws {
        let (dir, entries) = try Self.populated(4)
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        #expect(entries.map(\.file) == ["00001-101.png", "00002-102.png", "00003-103.png", "00004-104.png"])
        let (s, report) = try GallerySession.open(directory: dir)
        #expect(s.entries == entries)
        #expect(!report.needsRepair && report.journalRecords == 4)
        try s.setFavourite(file: "00002-102.png", true)
        try s.delete(file: "00003-103.png")
        #expect(!FileManager.default.fileExists(atPath: dir + "/00003-103.png"))
        let (again, r2) = try GallerySession.open(directory: dir)
        #expect(again.entries.map(\.file) == ["00001-101.png", "00002-102.png", "00004-104.png"])
        #expect(again.entries[1].favourite)
        #expect(!r2.needsRepair)
        // new images continue the numbering
        let e = try again.add(image: Self.image(9), record: Self.record(9))
        #expect(e.file == "00005-109.png")
        // each PNG carries the full record
        let parsed = ImageMetadata.parse(try PNGFile.readText(dir + "/00004-104.png").texts)
        #expect(parsed?.parameters == Self.record(4).parameters)
    }

    @Test("a torn last record (crash mid-append) is ignored and the journal repaired")
    func tornRecord() throws {
        let (dir, entries) = try Self.populated(3)
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let journal = dir + "/" + GallerySession.journalName
        var data = try Data(contentsOf: URL(fileURLWithPath: journal))
        let lines = data.split(separator: 0x0A)
        // a favourite record cut in the middle, without its newline
        data.append(Data(lines[0].prefix(25)))
        try data.write(to: URL(fileURLWithPath: journal))
        let (s, report) = try GallerySession.open(directory: dir)
        #expect(report.tornRecords == 1)
        #expect(report.compacted)
        #expect(s.entries == entries)
        let healed = try Data(contentsOf: URL(fileURLWithPath: journal))
        #expect(healed.last == 0x0A)
        let (_, r2) = try GallerySession.open(directory: dir)
        #expect(!r2.needsRepair, "after repair the journal is clean")
        // a damaged record in the middle (bit flip) is skipped, the rest kept
        var bytes = [UInt8](healed)
        let secondLine = bytes.firstIndex(of: 0x0A)! + 30
        bytes[secondLine] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: journal))
        let (s3, r3) = try GallerySession.open(directory: dir)
        #expect(r3.corruptRecords == 1)
        #expect(r3.recoveredFromPNG == 1, "the image of the damaged record is recovered from its PNG")
        #expect(s3.entries.map(\.file) == entries.map(\.file))
        #expect(s3.entries.map(\.parameters) == entries.map(\.parameters))
    }

    @Test("kill -9 safety: without its journal a session is rebuilt from the PNGs alone")
    func rebuildFromPNGs() throws {
        let (dir, entries) = try Self.populated(3)
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        try FileManager.default.removeItem(atPath: dir + "/" + GallerySession.journalName)
        // a PNG write that died before its rename leaves only a hidden temporary file
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/.00004-104.png.tmp-123-456"))
        let (s, report) = try GallerySession.open(directory: dir)
        #expect(report.recoveredFromPNG == 3)
        #expect(report.removedTemporaries == 1)
        #expect(s.entries.map(\.file) == entries.map(\.file))
        #expect(s.entries.map(\.parameters) == entries.map(\.parameters))
        #expect(s.entries.map(\.seconds) == entries.map(\.seconds))
        #expect(FileManager.default.fileExists(atPath: dir + "/" + GallerySession.journalName), "the index is rewritten")
        #expect(!FileManager.default.fileExists(atPath: dir + "/.00004-104.png.tmp-123-456"))
        // a PNG renamed into place whose journal append never happened
        try PNGFile.write(Self.image(7), to: dir + "/00004-104.png", texts: ImageMetadata.texts(for: Self.record(4)))
        // and a foreign A1111 image dropped into the folder
        try PNGFile.write(Self.image(8), to: dir + "/zz-foreign.png", texts: [
            PNGText(key: "parameters", value: "a castle\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: 9, Size: 8x8", kind: .text),
        ])
        // an entry whose PNG vanished
        try FileManager.default.removeItem(atPath: dir + "/00001-101.png")
        let (s2, r2) = try GallerySession.open(directory: dir)
        #expect(r2.recoveredFromPNG == 2 && r2.missingFiles == 1)
        #expect(s2.entries.map(\.file) == ["00002-102.png", "00003-103.png", "00004-104.png", "zz-foreign.png"])
        let foreign = s2.entries.last!
        #expect(foreign.foreign && foreign.parameters.prompt == "a castle" && foreign.parameters.scheduler == "dpm++2m-karras")
    }

    @Test("a killed process mid-journal-write never loses earlier images")
    func killMidWrite() throws {
        let (dir, entries) = try Self.populated(2)
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        // simulate: every possible cut of the journal file keeps all images (recovered from PNGs when needed)
        let journal = dir + "/" + GallerySession.journalName
        let full = try Data(contentsOf: URL(fileURLWithPath: journal))
        for cut in stride(from: 0, through: full.count, by: 37) {
            try full.prefix(cut).write(to: URL(fileURLWithPath: journal))
            let (s, _) = try GallerySession.open(directory: dir)
            #expect(s.entries.map(\.file) == entries.map(\.file), "cut at \(cut)")
            #expect(s.entries.map(\.parameters) == entries.map(\.parameters))
        }
    }

    @Test("sessions are listed newest first; the default root follows XDG")
    func sessions() throws {
        let root = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for name in ["2025-01-01_10-00-00", "2025-02-01_10-00-00"] {
            try GallerySession(directory: root + "/" + name).add(image: Self.image(1), record: Self.record(1))
        }
        let list = GallerySession.listSessions(root: root)
        #expect(list.map(\.name) == ["2025-02-01_10-00-00", "2025-01-01_10-00-00"])
        #expect(list.allSatisfy { $0.imageCount == 1 })
        #expect(GallerySession.defaultRoot(environment: ["XDG_DATA_HOME": "/x/data", "HOME": "/h"]) == "/x/data/kolors-studio/sessions")
        #expect(GallerySession.defaultRoot(environment: ["HOME": "/h"]) == "/h/.local/share/kolors-studio/sessions")
        #expect(GallerySession.sessionName(for: Date(timeIntervalSince1970: 0)).count == 19)
        let (empty, report) = try GallerySession.open(directory: root + "/does-not-exist")
        #expect(empty.entries.isEmpty && !report.needsRepair)
        #expect(!FileManager.default.fileExists(atPath: root + "/does-not-exist"), "nothing is created until an image is saved")
    }
}
