import Foundation
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The studio as a newcomer meets it, for real: small terminals, sessions that cannot be
/// written, Ctrl-Z, quitting with work in flight, `scripts/studio` from another folder (tmux).
extension TerminalEndToEnd {
    @Suite("Newcomer end to end (tmux)", .serialized)
    struct NewcomerEndToEndTests {
        static func skipIfUnavailable() -> Bool { EndToEndTests.skipIfUnavailable() }

        /// Rows of the screen whose columns from `x` on hold half blocks (the preview).
        static func halfBlockRows(_ screen: String, from x: Int) -> Int {
            screen.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
                Array(line).dropFirst(x).contains("▀")
            }.count
        }

        @Test("80×24: the real engine's preview shows in half blocks beside the editors; Ctrl-F shows it full screen")
        func preview80x24() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-80x24")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/s"
            let t = try TmuxSession(command: EndToEndTests.command(home: home, args: "--session \(E2E.q(session)) --preview blocks"),
                                    width: 80, height: 24)
            defer { t.kill() }
            var screen = t.waitFor(text: "DEMO: random-weight", timeout: 20)
            #expect(screen.contains("┌ Preview"), "a preview pane at 80×24")
            #expect(screen.contains("Ctrl-F full view"))
            #expect(screen.contains("Size  256×256"), "the demo checkpoint starts small")
            t.type("一只柴犬 a shiba inu in snow")
            t.keys("C-g")
            screen = t.waitFor(text: "saved 00001-", timeout: 90)
            let layout = StudioLayout.compute(width: 80, height: 24, banner: true, extraParamRows: 0, compactExtraParamRows: 2)
            let previewX = try #require(layout.preview).inner.x
            #expect(Self.halfBlockRows(screen, from: previewX) >= 10, "the finished image in half blocks:\n\(screen)")
            for line in screen.split(separator: "\n") { #expect(line.count <= 80) }
            // every step's preview showed there too (the log has them); and the full view
            t.keys("C-f")
            screen = t.waitFor(text: "Ctrl-F or Esc: back")
            #expect(Self.halfBlockRows(screen, from: 1) >= 16, "the full view uses the screen:\n\(screen)")
            t.keys("Escape")
            screen = t.waitFor("the editors are back") { $0.contains("Prompt ✎") }
            // F1 lists the full-view key
            t.keys("F1")
            t.waitFor(text: "Help · every key")
            var seen = t.capture()
            for _ in 0..<30 { t.keys("Down"); seen += t.capture() }
            #expect(seen.contains("Ctrl-F") && seen.contains("full-screen preview"))
            t.keys("Escape", "C-q")
            screen = t.waitFor(text: "TTY_END")
            #expect(screen.contains("KOLORS_EXIT=0") && screen.contains("TTY: icanon echo TTY_END"))
        }

        @Test("60×20: a preview pane too (test-pattern generator), and the folded negative prompt unfolds on Tab")
        func preview60x20() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-60x20")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let t = try TmuxSession(command: EndToEndTests.command(home: home, args: "--session \(E2E.q(home + "/s")) --preview blocks",
                                                                  env: "KOLORS_STUDIO_TEST_GENERATOR=pattern:0.02"),
                                    width: 60, height: 20)
            defer { t.kill() }
            var screen = t.waitFor(text: "TEST PATTERN")
            #expect(screen.contains("┌ Preview") && screen.contains(" Negative (none) · Tab to edit"))
            t.keys("Tab")
            screen = t.waitFor(text: "Negative prompt ✎")
            t.type("blurry")
            t.keys("BTab")
            screen = t.waitFor(text: " Negative blurry")
            t.keys("C-g")
            screen = t.waitFor(text: "saved 00001-", timeout: 30)
            let previewX = try #require(StudioLayout.compute(width: 60, height: 20, banner: false, compactExtraParamRows: 2).preview).inner.x
            #expect(Self.halfBlockRows(screen, from: previewX) >= 6, "half blocks in the 60×20 preview:\n\(screen)")
            t.keys("C-q")
            t.waitFor(text: "TTY_END")
        }

        /// The command for a read-only session: as root the studio runs as `nobody` (root may write
        /// anywhere), otherwise plain permissions do it.
        static func readOnlyPrefix() -> String {
            getuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups -- " : ""
        }

        @Test("a read-only session: its PNGs in the gallery, and Ctrl-G refused with the reason before any work")
        func readOnlySession() throws {
            if Self.skipIfUnavailable() { return }
            if getuid() == 0, E2E.which("setpriv") == nil { print("skipping: root without setpriv"); return }
            let home = E2E.tempDir("e2e-readonly")
            defer {
                _ = E2E.run(["chmod", "-R", "u+w", home])
                try? FileManager.default.removeItem(atPath: home)
            }
            let session = home + "/old"
            let writer = GallerySession(directory: session)
            for i in 1...2 {
                try writer.add(image: TestPatternGenerator.pattern(width: 32, height: 32, seed: UInt64(i)),
                               record: ImageRecord(parameters: GenerationParameters(prompt: "kept \(i)", seed: UInt64(i))))
            }
            // the journal lost its last record (as a crash would): reading the session wants to repair it
            let journal = session + "/" + GallerySession.journalName
            let lines = try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n")
            try (lines.dropLast().joined(separator: "\n") + "\n").write(toFile: journal, atomically: false, encoding: .utf8)
            chmod(home, 0o777)
            chmod(session, 0o555)
            for f in try FileManager.default.contentsOfDirectory(atPath: session) { chmod(session + "/" + f, 0o444) }
            let log = home + "/studio.log"
            let command = "cd \(E2E.q(E2E.repo.path)) && \(Self.readOnlyPrefix())env LANG=C.UTF-8 HOME=\(E2E.q(home)) XDG_DATA_HOME= "
                + "KOLORS_STUDIO_TEST_GENERATOR=pattern:0.02 KOLORS_STUDIO_LOG=\(E2E.q(log)) \(E2E.q(E2E.binary)) studio "
                + "--session \(E2E.q(session)) --preview blocks; echo KOLORS_EXIT=$?; sleep 60"
            let t = try TmuxSession(command: command, width: 100, height: 30)
            defer { t.kill() }
            var screen = t.waitFor(text: "Images cannot be saved in this session", timeout: 15)
            #expect(screen.contains("not writable"), "the banner says why:\n\(screen)")
            t.waitFor(text: "kept 2")                                   // the last image's parameters came back
            t.keys("C-g")
            screen = t.waitFor(text: "not queued")
            #expect(screen.contains("not writable"), "\(screen)")
            #expect(screen.contains("Jobs none yet"), "no job was made")
            let logText = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(logText.contains("key ctrl(\"g\")") && !logText.contains("job 1 "), "Ctrl-G arrived; the generator never ran")
            // the gallery shows the session's images although it cannot repair its index
            t.keys("C-o")
            screen = t.waitFor(text: "Gallery · session old · 2/2 · read-only")
            #expect(screen.contains("00001-1") && screen.contains("00002-2"), "\(screen)")
            t.keys("Escape")
            // the message log keeps the whole explanation
            t.keys("C-n")
            screen = t.waitFor(text: "Messages ·")
            #expect(screen.contains("not writable"))
            t.keys("Escape", "C-q")
            screen = t.waitFor(text: "KOLORS_EXIT=0")
            #expect(try FileManager.default.contentsOfDirectory(atPath: session).sorted() == ["00001-1.png", "00002-2.png", GallerySession.journalName], "nothing written")
        }

        @Test("a session folder that cannot be created refuses Ctrl-G at once")
        func uncreatableSession() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-nocreate")
            defer { try? FileManager.default.removeItem(atPath: home) }
            FileManager.default.createFile(atPath: home + "/file", contents: Data("x".utf8))
            let t = try TmuxSession(command: EndToEndTests.command(home: home, args: "--session \(E2E.q(home + "/file/s")) --preview none",
                                                                  env: "KOLORS_STUDIO_TEST_GENERATOR=pattern:0.02"))
            defer { t.kill() }
            t.waitFor(text: "TEST PATTERN")
            t.type("x")
            t.keys("C-g")
            let screen = t.waitFor(text: "not queued")
            #expect(screen.contains("Jobs none yet"))
            t.keys("C-q")
            t.waitFor(text: "TTY_END")
        }

        @Test("a save that fails after the job keeps the image; Ctrl-S saves it elsewhere; quitting with work asks first")
        func saveFailureKeepsTheImage() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-unsaved")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/s"
            let t = try TmuxSession(command: EndToEndTests.command(home: home, args: "--session \(E2E.q(session)) --preview blocks",
                                                                  env: "KOLORS_STUDIO_TEST_GENERATOR=pattern:0.3"))
            defer { t.kill() }
            t.waitFor(text: "TEST PATTERN")
            t.type("a fox in the snow")
            t.keys("C-g")
            t.waitFor(text: "step 2/25", timeout: 20)
            // quitting now would lose the running job: the studio asks
            t.keys("C-q")
            var screen = t.waitFor(text: "Quit Kolors Studio?")
            #expect(screen.contains("it stops, nothing is saved"))
            t.keys("n")
            t.waitFor(text: "not quitting")
            // the session folder goes away and a file takes its place while the job runs
            try? FileManager.default.removeItem(atPath: session)
            FileManager.default.createFile(atPath: session, contents: Data("in the way".utf8))
            screen = t.waitFor(text: "! #1 not saved: Ctrl-S", timeout: 30)
            #expect(Self.halfBlockRows(screen, from: 60) >= 8, "the image is on screen:\n\(screen)")
            t.keys("C-s")
            screen = t.waitFor(text: "Save 1 unsaved image into the folder")
            #expect(screen.contains("kolors-unsaved"), "prefilled with a folder under the working directory")
            t.keys("C-u")
            t.type(home + "/file-in-the-way/x")
            FileManager.default.createFile(atPath: home + "/file-in-the-way", contents: Data())
            t.keys("Enter")
            screen = t.waitFor(text: "is not a folder")
            #expect(screen.contains("Save 1 unsaved image"), "the dialog stays open with the reason")
            t.keys("C-u")
            t.type(home + "/rescued")
            t.keys("Enter")
            t.waitFor(text: "saved 00001-")
            let files = try FileManager.default.contentsOfDirectory(atPath: home + "/rescued").filter { $0.hasSuffix(".png") }
            #expect(files.count == 1)
            if let f = files.first {
                let meta = ImageMetadata.parse(try PNGFile.readText(home + "/rescued/" + f).texts)
                #expect(meta?.parameters.prompt == "a fox in the snow")
            }
            t.keys("C-q")
            screen = t.waitFor(text: "TTY_END")
            #expect(screen.contains("KOLORS_EXIT=0"), "nothing left at risk: quits at once")
        }

        @Test("Ctrl-Z gives the shell its screen back; fg resumes the studio and repaints it")
        func suspendAndResume() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-suspend")
            defer { try? FileManager.default.removeItem(atPath: home) }
            // an interactive shell with job control, as a user has
            let t = try TmuxSession(command: "env -i PATH=/usr/bin:/bin TERM=tmux-256color HOME=\(E2E.q(home)) PS1='PROMPT$ ' bash --norc --noprofile -i")
            defer { t.kill() }
            t.waitFor(text: "PROMPT$")
            t.type("cd \(E2E.q(E2E.repo.path)) && LANG=C.UTF-8 XDG_DATA_HOME= KOLORS_STUDIO_TEST_GENERATOR=pattern:0.02 \(E2E.q(E2E.binary)) studio "
                   + "--session \(E2E.q(home + "/s")) --preview blocks")
            t.keys("Enter")
            t.waitFor(text: "TEST PATTERN")
            t.type("before")
            t.waitFor(text: "before")
            t.keys("C-z")
            var screen = t.waitFor(text: "Stopped")
            #expect(!screen.contains("Parameters"), "the studio's screen is gone")
            #expect(screen.contains("PROMPT$"))
            t.type("stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon | sed 's/^/MODE:/'")
            t.keys("Enter")
            screen = t.waitFor("stty's answer") { $0.split(separator: "\n").contains { $0.hasPrefix("MODE:") } }
            #expect(screen.split(separator: "\n").contains("MODE:icanon"), "the shell has a normal terminal")
            t.type("fg")
            t.keys("Enter")
            screen = t.waitFor(text: "Parameters")
            #expect(screen.contains("before") && screen.contains("Kolors Studio"), "repainted in full")
            t.type(" after")
            t.waitFor(text: "before after")
            t.keys("C-q")
            t.waitFor("the studio left") { !$0.contains("Parameters") }
            t.type("echo EXIT=$?")
            t.keys("Enter")
            t.waitFor(text: "EXIT=0")
        }

        @Test("a session that is slow to index (a PNG with a huge parameters text) never holds up typing or Ctrl-P")
        func indexingOffTheUIThread() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-index")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/s"
            try FileManager.default.createDirectory(atPath: session, withIntermediateDirectories: true)
            // another tool's image whose parameters are one long prompt line (no journal: it must be indexed from the PNG)
            let long = String(repeating: "masterpiece, best quality, (detailed:1.2), ", count: 300)
            try PNGFile.write(RGBImage(width: 8, height: 8), to: session + "/00001-7.png", texts: [PNGText(key: "parameters", value: long
                + "\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 7, Size: 512x512", kind: .text)])
            let other = home + "/other.png"
            try PNGFile.write(RGBImage(width: 8, height: 8), to: other, texts: ImageMetadata.texts(for: ImageRecord(
                parameters: GenerationParameters(prompt: "loaded while indexing", seed: 31))))
            let t = try TmuxSession(command: EndToEndTests.command(home: home, args: "--session \(E2E.q(session)) --preview none",
                                                                  env: "KOLORS_STUDIO_TEST_GENERATOR=pattern:0.02"))
            defer { t.kill() }
            t.waitFor(text: "TEST PATTERN")
            let typed = Date()
            t.type("still typing")
            t.waitFor(text: "still typing", timeout: 3)
            #expect(Date().timeIntervalSince(typed) < 2, "keys show at once while the session is read")
            t.keys("C-p")
            t.waitFor(text: "Load all parameters from a PNG")
            t.type(other)
            t.keys("Enter")
            t.waitFor(text: "loaded while indexing", timeout: 5)
            t.keys("C-o")
            // either still reading (the parser at work) or done: never a frozen screen
            let screen = t.waitFor("the gallery") { $0.contains("Gallery · session s · reading…") || $0.contains("Gallery · session s · 1/1") }
            #expect(screen.contains("Gallery · session s"))
            t.keys("Escape", "C-q")
            t.waitFor(text: "TTY_END")
        }

        @Test("scripts/studio keeps the caller's folder (relative --session lands there), builds with --package-path, shows progress")
        func studioScript() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-script")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let work = home + "/my work"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            // a stand-in for `swift` (the real build is the test suite's own): records where and how it was called
            let bin = home + "/bin"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
            try """
            #!/bin/sh
            printf 'PWD=%s\\nARGS=%s\\n' "$PWD" "$*" > "$SWIFT_STUB_LOG"
            echo "Building for production..."
            for i in 1 2 3; do echo "[$i/3] Compiling KolorsStub file$i.swift"; done
            echo "Build complete! (0.01s)"
            """.write(toFile: bin + "/swift", atomically: true, encoding: .utf8)
            chmod(bin + "/swift", 0o755)
            let stubLog = home + "/swift-stub.log", buildOutput = home + "/build-output.txt"
            let command = "cd \(E2E.q(work)) && env PATH=\(E2E.q(bin)):$PATH SWIFT_STUB_LOG=\(E2E.q(stubLog)) KOLORS_STUDIO_CONFIGURATION=debug "
                + "LANG=C.UTF-8 HOME=\(E2E.q(home)) XDG_DATA_HOME= KOLORS_STUDIO_TEST_GENERATOR=pattern:0.02 "
                + "\(E2E.q(E2E.repo.path + "/scripts/studio")) --session my-session --preview none 2>\(E2E.q(buildOutput)); "
                + "echo KOLORS_EXIT=$?; sleep 60"
            let t = try TmuxSession(command: command)
            defer { t.kill() }
            t.waitFor(text: "TEST PATTERN", timeout: 30)
            t.type("x")
            t.keys("C-g")
            t.waitFor(text: "saved 00001-", timeout: 30)
            t.keys("C-q")
            t.waitFor(text: "KOLORS_EXIT=0")
            let pngs = (try? FileManager.default.contentsOfDirectory(atPath: work + "/my-session")) ?? []
            #expect(pngs.contains { $0.hasPrefix("00001-") }, "the relative session is in the caller's folder: \(pngs)")
            #expect(!FileManager.default.fileExists(atPath: E2E.repo.path + "/my-session"), "not in the checkout")
            let stub = try String(contentsOfFile: stubLog, encoding: .utf8)
            #expect(stub.contains("PWD=\(work)\n"), "\(stub)")
            #expect(stub.contains("--package-path \(E2E.repo.path)") && stub.contains("-c debug --product kolors"), "\(stub)")
            let output = try String(contentsOfFile: buildOutput, encoding: .utf8)
            #expect(output.contains("[1/3] Compiling KolorsStub"), "build progress is shown: \(output)")
            #expect(output.contains("Build complete!"))
        }
    }
}
