import Foundation
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
@testable import KolorsStudio
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Proves that sixel previews really reach the screen: the studio runs in `xterm -ti vt340` on
/// a virtual X server, shows a known four-colour image from its session in the preview pane,
/// and a screenshot of the X screen is checked pixel by pixel.
extension TerminalEndToEnd {
    @Suite("Sixel pixels (Xvfb + xterm)", .serialized)
    struct SixelPixelTests {
        /// A 256² image with orange, azure / violet, pink quadrants: colours no 8/16-colour UI text
        /// can produce, so they can only come from the sixel image.
        static func quadrants() -> RGBImage {
            var px = [UInt8](repeating: 0, count: 256 * 256 * 3)
            for y in 0..<256 {
                for x in 0..<256 {
                    let c: (UInt8, UInt8, UInt8) = y < 128 ? (x < 128 ? (255, 128, 0) : (0, 128, 255)) : (x < 128 ? (128, 0, 255) : (255, 128, 192))
                    let i = (y * 256 + x) * 3
                    px[i] = c.0; px[i + 1] = c.1; px[i + 2] = c.2
                }
            }
            return RGBImage(width: 256, height: 256, pixels: px)
        }

        struct Blob { var count = 0; var sx = 0; var sy = 0; var minX = Int.max; var maxX = 0; var minY = Int.max; var maxY = 0
            var cx: Double { Double(sx) / Double(max(1, count)) }
            var cy: Double { Double(sy) / Double(max(1, count)) }
        }

        /// Pixels near each quadrant colour (libsixel maps 255 to about 247–252); "red" = top left
        /// (orange), "green" = top right (azure), "blue" = bottom left (violet), "yellow" = bottom right (pink).
        static func blobs(_ img: RGBImage) -> [String: Blob] {
            let targets: [(String, (Int, Int, Int))] = [("red", (255, 128, 0)), ("green", (0, 128, 255)), ("blue", (128, 0, 255)),
                                                        ("yellow", (255, 128, 192))]
            var out: [String: Blob] = [:]
            for y in 0..<img.height {
                for x in 0..<img.width {
                    let (r, g, b) = img[x, y]
                    for (name, t) in targets where abs(Int(r) - t.0) < 24 && abs(Int(g) - t.1) < 24 && abs(Int(b) - t.2) < 24 {
                        var bl = out[name] ?? Blob()
                        bl.count += 1; bl.sx += x; bl.sy += y
                        bl.minX = min(bl.minX, x); bl.maxX = max(bl.maxX, x); bl.minY = min(bl.minY, y); bl.maxY = max(bl.maxY, y)
                        out[name] = bl
                    }
                }
            }
            return out
        }

        @Test("a gallery image shows as sixel pixels in the preview pane of a real xterm")
        func sixelInXterm() throws {
            guard let xvfb = E2E.which("Xvfb"), let xterm = E2E.which("xterm"), E2E.which("import") != nil else {
                print("skipping the sixel pixel test: Xvfb, xterm or ImageMagick's import is missing")
                return
            }
            guard FileManager.default.isExecutableFile(atPath: E2E.binary) else {
                print("skipping the sixel pixel test: \(E2E.binary) is not built")
                return
            }
            let dir = E2E.tempDir("sixel")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try GallerySession(directory: dir + "/session").add(
                image: Self.quadrants(), record: ImageRecord(parameters: GenerationParameters(prompt: "four quadrants", width: 256, height: 256)))
            // a free display number
            var display = 0
            for n in (90 + Int(getpid() % 50))..<(160 + Int(getpid() % 50)) where !FileManager.default.fileExists(atPath: "/tmp/.X\(n)-lock") {
                display = n
                break
            }
            var env = ProcessInfo.processInfo.environment
            env["DISPLAY"] = ":\(display)"
            guard let xpid = E2E.spawn([xvfb, ":\(display)", "-screen", "0", "1024x768x24", "-nolisten", "tcp"], environment: env,
                                       log: dir + "/xvfb.log") else {
                Issue.record("cannot start Xvfb")
                return
            }
            defer { E2E.stop(xpid) }
            // wait for the X server
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline && E2E.run(["xdpyinfo", "-display", ":\(display)"], environment: env, timeout: 2).0 != 0 { usleep(100_000) }
            let studioLog = dir + "/studio.log"
            let inner = "cd \(E2E.q(E2E.repo.path)) && env HOME=\(E2E.q(dir)) KOLORS_STUDIO_LOG=\(E2E.q(studioLog)) "
                + "\(E2E.q(E2E.binary)) studio --session \(E2E.q(dir + "/session")) --preview auto; sleep 60"
            guard let tpid = E2E.spawn([xterm, "-ti", "vt340", "-xrm", "XTerm*numColorRegisters: 256", "-geometry", "120x40+0+0",
                                        "-e", "sh", "-c", inner], environment: env, log: dir + "/xterm.log") else {
                Issue.record("cannot start xterm")
                return
            }
            defer { E2E.stop(tpid) }

            // poll screenshots until the image is there
            var found: [String: Blob] = [:]
            var shot = RGBImage(width: 0, height: 0)
            let until = Date().addingTimeInterval(15)
            while Date() < until {
                usleep(300_000)
                let path = dir + "/shot.png"
                guard E2E.run(["import", "-display", ":\(display)", "-window", "root", "png24:" + path], environment: env, timeout: 10).0 == 0,
                      let img = try? PNGFile.read(path).image else { continue }
                shot = img
                found = Self.blobs(img)
                if ["red", "green", "blue", "yellow"].allSatisfy({ (found[$0]?.count ?? 0) > 5000 }) { break }
            }
            let log = (try? String(contentsOfFile: studioLog, encoding: .utf8)) ?? ""
            #expect(log.contains("sixel=true"), "DA1 from xterm -ti vt340 advertises sixel:\n\(log)")
            #expect(log.contains("preview mode=sixel"))
            #expect(log.contains(" px at cell "), "a sixel image was written")
            guard let red = found["red"], let green = found["green"], let blue = found["blue"], let yellow = found["yellow"] else {
                Issue.record("the quadrant colours never appeared on screen; found \(found.mapValues(\.count))")
                return
            }
            for (name, b) in found where ["red", "green", "blue", "yellow"].contains(name) {
                #expect(b.count > 5000, "\(name): \(b.count) pixels")
            }
            // the quadrants are where they belong relative to each other
            #expect(red.cx < green.cx && blue.cx < yellow.cx)
            #expect(red.cy < blue.cy && green.cy < yellow.cy)
            #expect(abs(red.cy - green.cy) < 4 && abs(red.cx - blue.cx) < 4)
            // …and the image sits in the preview pane: the right part of the 120×40 xterm, above the last two rows
            let cellW = 6, cellH = 13                               // xterm's default "fixed" font
            let layout = StudioLayout.compute(width: 120, height: 40, banner: true)
            let pane = layout.preview!.inner
            let minX = min(red.minX, blue.minX), maxX = max(green.maxX, yellow.maxX)
            let minY = min(red.minY, green.minY), maxY = max(blue.maxY, yellow.maxY)
            let origin = 2                                          // xterm's inner border
            #expect(minX >= origin + pane.x * cellW - 2 && maxX <= origin + pane.maxX * cellW + 2, "x \(minX)…\(maxX) vs pane \(pane)")
            #expect(minY >= origin + pane.y * cellH - 2 && maxY <= origin + pane.maxY * cellH + 2, "y \(minY)…\(maxY) vs pane \(pane)")
            #expect(maxY < origin + 38 * cellH, "never on the last rows")
            // a square image stays square (sixel has real pixels)
            let w = Double(maxX - minX), h = Double(maxY - minY)
            #expect(abs(w - h) / max(w, h) < 0.05, "\(w)×\(h)")
            _ = shot
        }

        @Test("tmux passthrough doubles every ESC inside the DCS wrapper")
        func tmuxWrap() {
            let wrapped = ImagePresenter.tmuxWrap([0x1B, 0x50, 0x71, 0x1B, 0x5C])
            #expect(wrapped == Array("\u{1B}Ptmux;".utf8) + [0x1B, 0x1B, 0x50, 0x71, 0x1B, 0x1B, 0x5C] + [0x1B, 0x5C])
        }
    }
}
