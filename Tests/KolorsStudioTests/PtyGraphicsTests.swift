import Foundation
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import KolorsTerminal
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The byte streams the studio writes for the kitty and iTerm2 protocols, read back on a pty
/// that answers like those terminals, and inside tmux (Unicode placeholders in the pane's text).
extension TerminalEndToEnd {
    @Suite("kitty / iTerm2 streams on a pseudo terminal and in tmux", .serialized)
    struct PtyGraphicsTests {
        static func env(_ home: String, _ extra: [String: String] = [:]) -> [String: String] {
            ["TERM": "xterm-256color", "HOME": home, "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin",
             "KOLORS_STUDIO_TEST_GENERATOR": "pattern:0.06", "KOLORS_PREVIEW_BUDGET": "100000000",
             "KOLORS_STUDIO_LOG": home + "/studio.log"].merging(extra) { $1 }
        }

        /// (row, column) of the last `ESC 7 ESC [ r ; c H` before `offset`.
        static func cursor(before offset: Int, in output: [UInt8]) -> (Int, Int)? {
            let before = String(decoding: output[max(0, offset - 24)..<offset], as: UTF8.self)
            guard let r = before.range(of: "\u{1B}7\u{1B}[", options: .backwards) else { return nil }
            let nums = before[r.upperBound...].dropLast().split(separator: ";").compactMap { Int($0) }
            return nums.count == 2 ? (nums[0], nums[1]) : nil
        }

        @Test("kitty: live steps replace each other in place (two ids alternating, the old one deleted), C=1, inside the pane; F1 deletes, Esc places again")
        func kittyStream() throws {
            guard FileManager.default.isExecutableFile(atPath: E2E.binary) else { print("skipping: \(E2E.binary) is not built"); return }
            let home = E2E.tempDir("pty-kitty")
            defer { try? FileManager.default.removeItem(atPath: home) }
            // answers like kitty: the graphics query's OK, then DA1 (no sixel)
            let s = try PtyStudio(args: [E2E.binary, "studio", "--session", home + "/s"], environment: Self.env(home),
                                  da1Answer: "\u{1B}P>|kitty(0.35.2)\u{1B}\\\u{1B}_Gi=31;OK\u{1B}\\\u{1B}[?62;c")
            s.waitFor("TEST PATTERN")
            s.waitFor("kitty · Ctrl-F")
            let start = s.output.count
            s.send("a cat\u{7}")
            s.waitFor("saved 00001", from: start, timeout: 20)
            // every image that started has its last chunk (m=0) (on a loaded machine the last may still be going out)
            func complete() -> Bool {
                let t = String(decoding: s.output[start...], as: UTF8.self)
                return t.components(separatedBy: "\u{1B}_Ga=T").count == t.components(separatedBy: "m=0").count
            }
            let until = Date().addingTimeInterval(10)
            repeat { usleep(100_000); s.pump() } while !complete() && Date() < until
            let out = Array(s.output[start...])
            let cmds = GraphicsDecoder.kittyCommands(out)
            // group chunks into images: a transmit starts with a=T and ends with m=0
            var images: [(control: [String: String], rgb: [UInt8], offset: Int)] = []
            var deletes: [String] = []
            var i = 0
            var searchFrom = 0
            while i < cmds.count {
                let c = cmds[i]
                if c.control["a"] == "d" { deletes.append(c.control["i"] ?? ""); i += 1; continue }
                if c.control["a"] == "T" {
                    var j = i
                    while j < cmds.count && cmds[j].control["m"] != "0" { j += 1 }
                    if let img = GraphicsDecoder.kittyImage(Array(cmds[i...min(j, cmds.count - 1)])) {
                        let needle = Array("\u{1B}_Ga=T".utf8)
                        var at = searchFrom
                        while at + needle.count <= out.count && Array(out[at..<(at + needle.count)]) != needle { at += 1 }
                        searchFrom = at + 1
                        images.append((img.control, img.rgb, at))
                    }
                    i = j + 1
                    continue
                }
                i += 1
            }
            #expect(images.count >= 3, "live previews plus the finished image: \(images.count)")
            let layout = StudioLayout.compute(width: 120, height: 40, banner: false)
            let pane = layout.preview!.inner
            var ids: [String] = []
            for img in images {
                let c = img.control
                #expect(c["C"] == "1" && c["p"] == "1" && c["q"] == "2" && c["f"] == "24" && c["o"] == "z", "\(c)")
                let w = Int(c["s"] ?? "") ?? 0, h = Int(c["v"] ?? "") ?? 0
                #expect(img.rgb.count == w * h * 3 && w <= pane.width * 10 && h <= pane.height * 20)
                if let (row, col) = Self.cursor(before: img.offset, in: out) {
                    #expect(row - 1 >= pane.y && col - 1 >= pane.x && row - 1 + (h + 19) / 20 <= pane.maxY, "placed in the pane: \(row),\(col)")
                } else {
                    Issue.record("no cursor move before the image")
                }
                ids.append(c["i"] ?? "")
            }
            // two ids alternate; every replaced image is deleted right after its successor is placed
            #expect(Set(ids).count == 2, "ids \(Set(ids))")
            for k in 1..<ids.count { #expect(ids[k] != ids[k - 1]) }
            #expect(deletes.count >= ids.count - 1, "\(deletes.count) deletions for \(ids.count) images")
            for k in 1..<ids.count where k - 1 < deletes.count { #expect(deletes[k - 1] == ids[k - 1], "deleted the one replaced") }
            // no screen clears while the steps stream (kitty replaces images by id)
            let clears = String(decoding: out, as: UTF8.self).components(separatedBy: "\u{1B}[2J").count - 1
            #expect(clears == 0, "\(clears) full clears during generation")
            // the finished image: the test pattern's colours
            if let last = images.last {
                var colours = Set<Int>()
                for p in stride(from: 0, to: last.rgb.count, by: 3 * 97) {
                    colours.insert((last.rgb[p] > 128 ? 4 : 0) + (last.rgb[p + 1] > 128 ? 2 : 0) + (last.rgb[p + 2] > 128 ? 1 : 0))
                }
                #expect(colours.isSuperset(of: [4, 2, 1, 7]), "\(colours)")
            }
            // F1: the shown image is deleted (a=d), not drawn again while the overlay is open
            let helpStart = s.output.count
            s.send("\u{1B}OP")
            s.waitFor("Help · every key", from: helpStart)
            usleep(300_000)
            s.pump()
            let help = GraphicsDecoder.kittyCommands(Array(s.output[helpStart...]))
            #expect(help.contains { $0.control["a"] == "d" && $0.control["i"] == ids.last }, "the image under the overlay is deleted")
            #expect(!help.contains { $0.control["a"] == "T" }, "nothing is placed under the overlay")
            let closeStart = s.output.count
            s.send("\u{1B}")
            s.waitFor("\u{1B}_Ga=T", from: closeStart, timeout: 5)
            s.send("\u{11}")
            #expect(s.stop() == 0)
            let tail = String(decoding: s.output.suffix(300), as: UTF8.self)
            #expect(tail.contains("\u{1B}_Ga=d,d=I"), "images deleted before the screen is given back")
            #expect(tail.contains("\u{1B}[?1049l"))
        }

        @Test("iTerm2 (answering as WezTerm): each image is an OSC 1337 PNG of the fitted frame, framed and placed in the pane")
        func itermStream() throws {
            guard FileManager.default.isExecutableFile(atPath: E2E.binary) else { print("skipping: \(E2E.binary) is not built"); return }
            let home = E2E.tempDir("pty-iterm")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let s = try PtyStudio(args: [E2E.binary, "studio", "--session", home + "/s"], environment: Self.env(home),
                                  da1Answer: "\u{1B}P>|WezTerm 20240203-110809-5046fc22\u{1B}\\\u{1B}_Gi=31;OK\u{1B}\\\u{1B}[?65;4;6;18;22c")
            s.waitFor("TEST PATTERN")
            s.waitFor("iterm · Ctrl-F")
            let start = s.output.count
            s.send("a cat\u{7}")
            s.waitFor("saved 00001", from: start, timeout: 20)
            // every image that started has ended (the last one may still be going out on a loaded machine)
            func counts() -> (Int, Int) {
                let t = String(decoding: s.output[start...], as: UTF8.self)
                return (t.components(separatedBy: "\u{1B}]1337;File=").count, t.components(separatedBy: "\u{07}\u{1B}8").count)
            }
            let until = Date().addingTimeInterval(10)
            repeat { usleep(100_000); s.pump() } while counts().0 != counts().1 && Date() < until
            let text = String(decoding: s.output[start...], as: UTF8.self)
            let pieces = text.components(separatedBy: "\u{1B}]1337;File=").dropFirst()
            #expect(pieces.count >= 2, "\(pieces.count) images")
            let layout = StudioLayout.compute(width: 120, height: 40, banner: false)
            let pane = layout.preview!.inner
            var last: RGBImage?
            for p in pieces {
                guard let d = GraphicsDecoder.iterm(Array(("\u{1B}]1337;File=" + p).utf8)) else { Issue.record("undecodable image"); continue }
                let cols = Int(d.args["width"] ?? "") ?? 0, rows = Int(d.args["height"] ?? "") ?? 0
                #expect(cols >= 1 && cols <= pane.width && rows >= 1 && rows <= pane.height, "\(cols)×\(rows) cells")
                #expect(d.image.width <= cols * 10 && d.image.height <= rows * 20)
                #expect(d.args["doNotMoveCursor"] == "1")
                #expect(p.contains("\u{07}\u{1B}8"), "cursor restored after the image")
                last = d.image
            }
            if let last {
                #expect(last.width >= 300)
                var colours = Set<Int>()
                for i in stride(from: 0, to: last.pixels.count, by: 3 * 97) {
                    colours.insert((last.pixels[i] > 128 ? 4 : 0) + (last.pixels[i + 1] > 128 ? 2 : 0) + (last.pixels[i + 2] > 128 ? 1 : 0))
                }
                #expect(colours.isSuperset(of: [4, 2, 1, 7]), "\(colours)")
            }
            s.send("\u{11}")
            #expect(s.stop() == 0)
        }

        /// Byte-wise search: a placeholder and its diacritics form one Character, so String.contains misses it.
        static func has(_ text: String, _ needle: String) -> Bool {
            let h = Array(text.utf8), n = Array(needle.utf8)
            guard n.count <= h.count else { return false }
            return (0...(h.count - n.count)).contains { h[$0..<($0 + n.count)].elementsEqual(n) }
        }

        @Test("inside tmux: kitty images as U+10EEEE placeholder cells in the pane's text, the image id as colour; transmitted through passthrough")
        func tmuxPlaceholders() throws {
            guard E2E.which("tmux") != nil, FileManager.default.isExecutableFile(atPath: E2E.binary) else { print("skipping: tmux or the binary is missing"); return }
            let home = E2E.tempDir("tmux-kitty")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/s"
            try GallerySession(directory: session).add(image: SixelPixelTests.quadrants(),
                                                      record: ImageRecord(parameters: GenerationParameters(prompt: "q", width: 256, height: 256)))
            let cmd = "cd \(E2E.q(E2E.repo.path)) && env LANG=C.UTF-8 HOME=\(E2E.q(home)) KOLORS_PREVIEW=kitty KOLORS_STUDIO_LOG=\(E2E.q(home + "/studio.log")) "
                + "\(E2E.q(E2E.binary)) studio --session \(E2E.q(session)); sleep 30"
            let t = try TmuxSession(command: cmd)
            defer { t.kill() }
            func studioLog() -> String { (try? String(contentsOfFile: home + "/studio.log", encoding: .utf8)) ?? "" }
            func waitLog(_ text: String, _ seconds: Double) {
                let until = Date().addingTimeInterval(seconds)
                while !studioLog().contains(text) && Date() < until { usleep(50_000) }
            }
            waitLog("placeholder cells", 15)
            usleep(300_000)                          // the repaint after the image went out
            let screen = t.waitFor("placeholder cells", timeout: 5) { Self.has($0, "\u{10EEEE}") }
            let log = studioLog()
            #expect(log.contains("label=kitty·tmux"), "\(log.prefix(700))")
            if !Self.has(screen, "\u{10EEEE}") { Issue.record("studio log:\n\(log.suffix(3000))") }
            #expect(log.contains("placeholder cells") && log.contains("(tmux passthrough)"))
            // the placeholder grid: every cell U+10EEEE + row diacritic + column diacritic, rows and columns counting up
            let lines = screen.split(separator: "\n", omittingEmptySubsequences: false)
            var grid: [(row: Int, col: Int)] = []
            var firstX: Int?
            for (y, line) in lines.enumerated() {
                let scalars = Array(line.unicodeScalars)
                var x = 0
                var k = 0
                while k < scalars.count {
                    if scalars[k].value == 0x10EEEE, k + 2 < scalars.count,
                       let r = KittyGraphics.diacritics.firstIndex(of: scalars[k + 1].value),
                       let c = KittyGraphics.diacritics.firstIndex(of: scalars[k + 2].value) {
                        if r == 0 && c == 0 { firstX = x; _ = y }
                        grid.append((r, c))
                        k += 3
                    } else {
                        k += 1
                    }
                    x += 1
                }
            }
            let rows = Set(grid.map(\.row)).count, cols = Set(grid.map(\.col)).count
            #expect(rows >= 5 && cols >= 10 && grid.count == rows * cols, "a full \(rows)×\(cols) grid (\(grid.count) cells)")
            let layout = StudioLayout.compute(width: 120, height: 40, banner: true)
            if let x = firstX { #expect(x >= layout.preview!.inner.x, "the grid starts inside the preview pane (x \(x))") }
            // the cells carry the image id as a 256-colour foreground
            let coloured = t.tmux("capture-pane", "-p", "-e").replacingOccurrences(of: "\u{1B}[49m", with: "")
            let id = log.split(separator: "\n").first { $0.contains("placeholder cells") }?
                .components(separatedBy: " id ").last?.split(separator: " ").first.map(String.init) ?? "?"
            let idColoured = Self.has(coloured, "\u{1B}[38;5;\(id)m\u{10EEEE}")
            #expect(idColoured, "foreground colour = image id \(id)")
            // F1: the placeholders go with the image
            t.keys("F1")
            t.waitFor("no placeholder under help", timeout: 5) { !Self.has($0, "\u{10EEEE}") && $0.contains("Help") }
            waitLog("kitty delete image", 5)
            let after = studioLog()
            #expect(after.contains("kitty delete image \(id)"))
        }

        @Test("kolors generate --preview-in-terminal: the finished image inline, pixel for pixel (kitty), half blocks elsewhere, nothing when not a terminal")
        func generateInline() throws {
            guard FileManager.default.isExecutableFile(atPath: E2E.binary) else { print("skipping: \(E2E.binary) is not built"); return }
            let dir = E2E.tempDir("gen-inline")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let tiny = E2E.repo.appendingPathComponent("Tests/Fixtures/tiny-kolors").path
            func generate(_ name: String, answer: String, env extra: [String: String] = [:]) throws -> (PtyStudio, RGBImage?) {
                let out = dir + "/\(name).png"
                let s = try PtyStudio(args: [E2E.binary, "generate", "--model", tiny, "--prompt", "a red fox", "--steps", "2", "--width", "32",
                                             "--height", "48", "--seed", "1", "--variant", "full", "--output", out, "--preview-in-terminal"],
                                      environment: ["TERM": "xterm-256color", "HOME": dir, "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"].merging(extra) { $1 },
                                      da1Answer: answer)
                s.waitFor(out, timeout: 60)
                #expect(s.stop() == 0)
                return (s, try? PNGFile.read(out).image)
            }
            // kitty: the transmitted pixels are the PNG's
            let (k, png) = try generate("kitty", answer: "\u{1B}P>|kitty(0.35.2)\u{1B}\\\u{1B}_Gi=31;OK\u{1B}\\\u{1B}[?62;c")
            let saved = try #require(png)
            let cmds = GraphicsDecoder.kittyCommands(k.output).filter { $0.control["a"] != "q" && $0.control["i"] != "31" }
            let img = try #require(GraphicsDecoder.kittyImage(cmds), "a kitty image in the output")
            #expect(img.control["s"] == "32" && img.control["v"] == "48" && img.rgb == saved.pixels, "the finished image, unscaled")
            let text = String(decoding: k.output, as: UTF8.self)
            if let at = text.range(of: "\u{1B}_Ga=T"), let path = text.range(of: dir + "/kitty.png", options: .backwards) {
                #expect(at.lowerBound < path.lowerBound, "the image comes before the path line")
            }
            // a terminal without graphics: 24-bit half blocks, as many rows as half the height
            let (x, _) = try generate("blocks", answer: "\u{1B}P>|XTerm(379)\u{1B}\\\u{1B}[?63;1;2;6c")
            let xt = String(decoding: x.output, as: UTF8.self)
            #expect(xt.components(separatedBy: "▀").count - 1 == 32 * 24, "32×24 half-block cells")
            #expect(!xt.contains("\u{1B}_Ga=T") && !xt.contains("\u{1B}]1337"))
            // KOLORS_PREVIEW=iterm forces iTerm2 images: a PNG of the same pixels
            let (i, png2) = try generate("iterm", answer: "\u{1B}[?62;c", env: ["KOLORS_PREVIEW": "iterm"])
            let it = try #require(GraphicsDecoder.iterm(i.output))
            #expect(it.image.pixels == png2?.pixels)
            // not a terminal (output to a file): no image at all
            let (rc, plain) = E2E.run([E2E.binary, "generate", "--model", tiny, "--prompt", "x", "--steps", "1", "--width", "32", "--height", "32",
                                       "--variant", "full", "--output", dir + "/plain.png", "--preview-in-terminal"],
                                      environment: ["TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1", "HOME": dir, "PATH": "/usr/bin:/bin"], timeout: 60)
            #expect(rc == 0 && plain.contains("plain.png"), "\(plain)")
            #expect(!plain.contains("\u{1B}_G") && !plain.contains("▀") && !plain.contains("1337"))
        }
    }
}
