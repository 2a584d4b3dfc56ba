import Foundation
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
@testable import KolorsStudio
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Real terminals that speak the kitty graphics protocol or iTerm2's inline images, on a virtual
/// X server: the studio shows a known four-colour gallery image in its preview pane, and a
/// screenshot must hold those pixels there. kitty (Debian 12: 0.26.5) runs on Mesa's software
/// OpenGL (`LIBGL_ALWAYS_SOFTWARE=1`); Konsole (22.12) speaks kitty graphics, iTerm2 images and sixel.
extension TerminalEndToEnd {
    @Suite("kitty and iTerm2 pixels in real terminals (Xvfb)", .serialized)
    struct GraphicsTerminalTests {
        typealias Blob = SixelPixelTests.Blob

        /// A running X server with a terminal in it; stopped by `close()`.
        final class Desktop {
            let display: Int
            var env: [String: String]
            let dir: String
            private var pids: [pid_t] = []

            init?(dir: String) {
                guard let xvfb = E2E.which("Xvfb"), E2E.which("import") != nil, E2E.which("xdpyinfo") != nil else { return nil }
                var display = 0
                for n in (170 + Int(getpid() % 50))..<(240 + Int(getpid() % 50)) where !FileManager.default.fileExists(atPath: "/tmp/.X\(n)-lock") {
                    display = n
                    break
                }
                self.display = display
                self.dir = dir
                var env = ProcessInfo.processInfo.environment
                env["DISPLAY"] = ":\(display)"
                for k in ["KITTY_WINDOW_ID", "TERM_PROGRAM", "TMUX", "KOLORS_PREVIEW", "WEZTERM_EXECUTABLE", "GHOSTTY_RESOURCES_DIR"] { env[k] = nil }
                self.env = env
                guard let xpid = E2E.spawn([xvfb, ":\(display)", "-screen", "0", "1280x900x24", "-nolisten", "tcp"], environment: env,
                                           log: dir + "/xvfb.log") else { return nil }
                pids.append(xpid)
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline && E2E.run(["xdpyinfo", "-display", ":\(display)"], environment: env, timeout: 2).0 != 0 { usleep(100_000) }
            }

            func start(_ args: [String], extraEnv: [String: String] = [:], log: String) -> Bool {
                guard let pid = E2E.spawn(args, environment: env.merging(extraEnv) { $1 }, log: log) else { return false }
                pids.append(pid)
                return true
            }

            /// Where screenshots go: the test folder, or `KOLORS_TEST_SHOTS` (a folder) to keep them.
            var shotName = "shot"

            func screenshot() -> RGBImage? {
                let keep = ProcessInfo.processInfo.environment["KOLORS_TEST_SHOTS"]
                let path = (keep ?? dir) + "/\(shotName).png"
                guard E2E.run(["import", "-display", ":\(display)", "-window", "root", "png24:" + path], environment: env, timeout: 10).0 == 0
                else { return nil }
                return try? PNGFile.read(path).image
            }

            /// Types keys into the focused window (xdotool key names); false when xdotool is missing.
            func keys(_ names: String...) -> Bool {
                guard E2E.which("xdotool") != nil else { return false }
                return E2E.run(["xdotool", "key"] + names, environment: env, timeout: 5).0 == 0
            }

            /// Polls screenshots until `done` holds for the quadrant blobs, or the time is up.
            func waitForBlobs(seconds: Double, _ done: ([String: Blob]) -> Bool) -> [String: Blob] {
                var found: [String: Blob] = [:]
                let until = Date().addingTimeInterval(seconds)
                while Date() < until {
                    usleep(300_000)
                    guard let img = screenshot() else { continue }
                    found = SixelPixelTests.blobs(img)
                    if done(found) { break }
                }
                return found
            }

            func close() { for p in pids.reversed() { E2E.stop(p) } }
        }

        static let colours = ["red", "green", "blue", "yellow"]

        static func allShown(_ f: [String: Blob]) -> Bool { colours.allSatisfy { (f[$0]?.count ?? 0) > 3000 } }
        static func noneShown(_ f: [String: Blob]) -> Bool { colours.allSatisfy { (f[$0]?.count ?? 0) < 50 } }

        /// The four quadrants are on screen, in order, square, in the right part of the window
        /// (where the preview pane is), above its last rows.
        static func checkQuadrants(_ found: [String: Blob], window: (x: Int, y: Int, w: Int, h: Int), what: String) {
            guard let red = found["red"], let green = found["green"], let blue = found["blue"], let yellow = found["yellow"],
                  allShown(found) else {
                Issue.record("\(what): the quadrant colours never appeared on screen; found \(found.mapValues(\.count))")
                return
            }
            #expect(red.cx < green.cx && blue.cx < yellow.cx, "\(what): left/right")
            #expect(red.cy < blue.cy && green.cy < yellow.cy, "\(what): top/bottom")
            #expect(abs(red.cy - green.cy) < 4 && abs(red.cx - blue.cx) < 4, "\(what): aligned")
            let minX = min(red.minX, blue.minX), maxX = max(green.maxX, yellow.maxX)
            let minY = min(red.minY, green.minY), maxY = max(blue.maxY, yellow.maxY)
            let w = Double(maxX - minX), h = Double(maxY - minY)
            print("\(what): image at x \(minX)…\(maxX), y \(minY)…\(maxY) in a \(window.w)×\(window.h) window; pixels \(found.mapValues(\.count))")
            #expect(abs(w - h) / max(w, h) < 0.06, "\(what): a square image stays square: \(w)×\(h)")
            #expect(Double(minX) > Double(window.x) + Double(window.w) * 0.3, "\(what): in the preview pane on the right (x \(minX))")
            #expect(maxX <= window.x + window.w && minY >= window.y, "\(what): inside the window")
            #expect(Double(maxY) < Double(window.y) + Double(window.h) * 0.95, "\(what): never on the last rows (y \(maxY))")
            #expect(w > 150, "\(what): a real-size image, not a thumbnail of one cell: \(w) px wide")
        }

        static func prepare(_ tag: String) throws -> (dir: String, session: String)? {
            guard FileManager.default.isExecutableFile(atPath: E2E.binary) else {
                print("skipping the \(tag) pixel test: \(E2E.binary) is not built")
                return nil
            }
            let dir = E2E.tempDir(tag)
            try GallerySession(directory: dir + "/session").add(
                image: SixelPixelTests.quadrants(), record: ImageRecord(parameters: GenerationParameters(prompt: "four quadrants", width: 256, height: 256)))
            return (dir, dir + "/session")
        }

        static func studioCommand(dir: String, session: String, preview: String, env: String = "") -> String {
            "cd \(E2E.q(E2E.repo.path)) && env -u KITTY_WINDOW_ID -u TERM_PROGRAM TERM=xterm-256color LANG=C.UTF-8 HOME=\(E2E.q(dir)) "
                + "KOLORS_STUDIO_LOG=\(E2E.q(dir + "/studio.log")) \(env) \(E2E.q(E2E.binary)) studio --session \(E2E.q(session)) "
                + "--preview \(preview); sleep 60"
        }

        @Test("kitty: detected by its replies (XTVERSION, a=q), the gallery image drawn with the kitty protocol; F1 deletes it, Esc brings it back")
        func kittyTerminal() throws {
            guard let kitty = E2E.which("kitty") else {
                print("skipping the kitty pixel test: kitty is not installed (apt-get install kitty)")
                return
            }
            guard let (dir, session) = try Self.prepare("kitty") else { return }
            defer { try? FileManager.default.removeItem(atPath: dir) }
            guard let desk = Desktop(dir: dir) else { print("skipping: Xvfb, xdpyinfo or ImageMagick's import is missing"); return }
            defer { desk.close() }
            // the child sees TERM=xterm-256color and no KITTY_WINDOW_ID: only the terminal's answers can tell it is kitty
            guard desk.start([kitty, "--config", "NONE", "-o", "initial_window_width=120c", "-o", "initial_window_height=40c",
                              "-o", "remember_window_size=no", "-o", "window_padding_width=0",
                              "sh", "-c", Self.studioCommand(dir: dir, session: session, preview: "auto")],
                             extraEnv: ["LIBGL_ALWAYS_SOFTWARE": "1"], log: dir + "/kitty.log") else {
                Issue.record("cannot start kitty")
                return
            }
            desk.shotName = "kitty"
            let found = desk.waitForBlobs(seconds: 25, Self.allShown)
            let log = (try? String(contentsOfFile: dir + "/studio.log", encoding: .utf8)) ?? ""
            let kittyLog = (try? String(contentsOfFile: dir + "/kitty.log", encoding: .utf8)) ?? ""
            if !Self.allShown(found) && log.isEmpty {
                Issue.record("kitty did not run the studio (no log); kitty says:\n\(kittyLog.suffix(2000))")
                return
            }
            #expect(log.contains("xtversion=kitty("), "kitty answered XTVERSION:\n\(log.prefix(600))")
            #expect(log.contains("kitty-query=true"), "kitty answered the graphics query")
            #expect(log.contains("preview mode=kitty"), "\(log.prefix(800))")
            #expect(log.contains("kitty ") && log.contains(" px at cell "), "a kitty image was written")
            // the window: kitty at the top left of the X screen, 120×40 cells of the probed size
            let cellLine = log.split(separator: "\n").first { $0.contains("cell=") }.map(String.init) ?? ""
            let cell = cellLine.split(separator: " ").first { $0.hasPrefix("cell=") }?.dropFirst(5).split(separator: "x").compactMap { Int($0) } ?? []
            let (cw, ch) = cell.count == 2 && cell[0] > 0 ? (cell[0], cell[1]) : (10, 20)
            Self.checkQuadrants(found, window: (0, 0, 120 * cw, 40 * ch), what: "kitty")
            // where the studio says it put the image (cell x,y) is where kitty drew it
            if let line = log.split(separator: "\n").last(where: { $0.contains("kitty ") && $0.contains(" px at cell ") }),
               let at = line.range(of: " px at cell ") {
                let xy = line[at.upperBound...].prefix { $0 != ":" && $0 != " " }.split(separator: ",").compactMap { Int($0) }
                if xy.count == 2, let red = found["red"] {
                    #expect(abs(red.minX - xy[0] * cw) <= 2 && abs(red.minY - xy[1] * ch) <= 2,
                            "image at pixel \(red.minX),\(red.minY), cell \(xy) × \(cw)×\(ch)")
                }
            }
            // an overlay over the preview deletes the image (a=d); closing it places it again
            if desk.keys("F1") {
                desk.shotName = "kitty-help"
                let gone = desk.waitForBlobs(seconds: 8, Self.noneShown)
                #expect(Self.noneShown(gone), "F1's help overlay: the image is deleted, found \(gone.mapValues(\.count))")
                let after = (try? String(contentsOfFile: dir + "/studio.log", encoding: .utf8)) ?? ""
                #expect(after.contains("kitty delete image"), "deleted with a=d")
                _ = desk.keys("Escape")
                desk.shotName = "kitty-back"
                let back = desk.waitForBlobs(seconds: 8, Self.allShown)
                #expect(Self.allShown(back), "Esc: the image is back, found \(back.mapValues(\.count))")
            } else {
                print("xdotool is missing: the overlay part of the kitty test is skipped")
            }
        }

        @Test("Konsole: iTerm2 inline images (--preview iterm) and the kitty protocol it is detected with")
        func konsoleTerminal() throws {
            guard let konsole = E2E.which("konsole") else {
                print("skipping the Konsole pixel test: konsole is not installed (apt-get install konsole)")
                return
            }
            for preview in ["iterm", "auto"] {
                guard let (dir, session) = try Self.prepare("konsole") else { return }
                defer { try? FileManager.default.removeItem(atPath: dir) }
                guard let desk = Desktop(dir: dir) else { print("skipping: Xvfb, xdpyinfo or ImageMagick's import is missing"); return }
                defer { desk.close() }
                guard desk.start([konsole, "--nofork", "--hide-menubar", "--hide-tabbar", "-p", "TerminalColumns=120", "-p", "TerminalRows=40",
                                  "-e", "sh", "-c", Self.studioCommand(dir: dir, session: session, preview: preview)],
                                 extraEnv: ["QT_QPA_PLATFORM": "xcb", "XDG_RUNTIME_DIR": dir, "LIBGL_ALWAYS_SOFTWARE": "1"],
                                 log: dir + "/konsole.log") else {
                    Issue.record("cannot start konsole")
                    return
                }
                desk.shotName = "konsole-\(preview)"
                let found = desk.waitForBlobs(seconds: 30, Self.allShown)
                let log = (try? String(contentsOfFile: dir + "/studio.log", encoding: .utf8)) ?? ""
                if log.isEmpty {
                    let k = (try? String(contentsOfFile: dir + "/konsole.log", encoding: .utf8)) ?? ""
                    Issue.record("Konsole did not run the studio (no log); Konsole says:\n\(k.suffix(2000))")
                    return
                }
                let expected = preview == "iterm" ? "iterm" : "kitty"
                #expect(log.contains("preview mode=\(expected)"), "\(log.prefix(800))")
                #expect(log.contains("\(expected) ") && log.contains(" px at cell "), "an image was written with \(expected)")
                if preview == "auto" {
                    #expect(log.contains("xtversion=Konsole") && log.contains("kitty-query=true"), "\(log.prefix(600))")
                }
                // Konsole's window: the whole X screen's top left; its size from the screenshot is not needed
                Self.checkQuadrants(found, window: (0, 0, 1280, 900), what: "Konsole \(expected)")
            }
        }
    }
}
