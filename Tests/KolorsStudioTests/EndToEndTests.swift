import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import Testing

/// The real `kolors studio` binary driven through tmux (send-keys / capture-pane).
extension TerminalEndToEnd {
    @Suite("Studio end to end (tmux)", .serialized)
    struct EndToEndTests {
        static var available: Bool { E2E.which("tmux") != nil && FileManager.default.isExecutableFile(atPath: E2E.binary) }

        /// The shell command that runs the studio, then reports its exit status and the tty modes.
        /// Without `--model` and with an empty HOME (no Hugging Face cache) the studio runs the
        /// real engine on the embedded demo checkpoint: the project's tiny random-weight Kolors.
        static func command(home: String, args: String, env: String = "") -> String {
            "cd \(E2E.q(E2E.repo.path)) && env LANG=C.UTF-8 HOME=\(E2E.q(home)) XDG_DATA_HOME= \(env) \(E2E.q(E2E.binary)) studio \(args); "
                + "echo KOLORS_EXIT=$?; echo TTY: $(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo) TTY_END; sleep 60"
        }

        static func skipIfUnavailable() -> Bool {
            if !available { print("skipping: tmux or \(E2E.binary) missing (run swift build first)") }
            return !available
        }

        @Test("type a Chinese+English prompt, Tab through fields, F1 help, generate, gallery, quit restores the terminal")
        func mainFlow() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-home")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/session"
            let t = try TmuxSession(command: Self.command(home: home, args: "--session \(E2E.q(session)) --preview blocks"))
            defer { t.kill() }
            var screen = t.waitFor(text: "Kolors Studio")
            screen = t.waitFor(text: "DEMO: random-weight demo checkpoint", timeout: 20)
            #expect(screen.contains("kolors studio --model DIR"), "the demo banner says how to use real Kolors")
            #expect(screen.contains("Prompt ✎"), "the prompt editor has focus at start")
            let prompt = "一只可爱的小猫 a cute cat, 窗台上 sunlight"
            t.type(prompt)
            screen = t.waitFor(text: "一只可爱的小猫 a cute cat")
            // Tab to the negative prompt, then to Steps
            t.keys("Tab")
            t.waitFor(text: "Negative prompt ✎")
            t.type("模糊, blurry")
            t.keys("Tab")
            screen = t.waitFor(text: "←/→ change · type a number")
            t.type("6")
            t.keys("Enter")
            // a size big enough that the engine's steps can be watched (the demo's 256² ones take ~25 ms)
            t.keys("Tab", "Tab", "Tab", "Tab")     // CFG, Images, Seed, Size
            t.waitFor(text: "s swap")
            t.type("768")
            t.keys("Enter")
            t.waitFor(text: "768×768")
            t.keys("BTab", "BTab", "BTab", "BTab", "BTab")
            t.waitFor(text: "Negative prompt ✎")
            t.keys("BTab")
            t.waitFor(text: "Prompt ✎")
            // help overlay
            t.keys("F1")
            screen = t.waitFor(text: "Help · every key")
            for key in ["Ctrl-G", "Ctrl-O", "Ctrl-Q", "Tab / Shift-Tab", "Esc"] { #expect(screen.contains(key)) }
            t.keys("Escape")
            screen = t.waitFor("help closed") { !$0.contains("Help · every key") }
            // generate: progress, then saved
            t.keys("C-g")
            t.waitFor(text: "step 3/6", timeout: 60)   // the real engine's step counter
            screen = t.waitFor(text: "saved 00001-", timeout: 60)
            #expect(screen.contains("▀"), "the preview is drawn with half blocks")
            let files = try FileManager.default.contentsOfDirectory(atPath: session).filter { $0.hasSuffix(".png") }
            #expect(files.count == 1)
            if let f = files.first {
                let meta = ImageMetadata.parse(try PNGFile.readText(session + "/" + f).texts)
                #expect(meta?.parameters.prompt == prompt)
                #expect(meta?.parameters.negativePrompt == "模糊, blurry")
                #expect(meta?.parameters.steps == 6)
            }
            // gallery
            t.keys("C-o")
            screen = t.waitFor(text: "Gallery · session session")
            #expect(screen.contains("00001-"))
            t.keys("Escape")
            t.waitFor("gallery closed") { !$0.contains("Gallery · session") }
            // F2 switches the theme (found in themes/ next to the build)
            t.keys("F2")
            t.waitFor(text: "theme: light")
            // quit: the alternate screen is gone and the tty is back in canonical mode with echo
            t.keys("C-q")
            screen = t.waitFor(text: "TTY_END")
            #expect(!screen.contains("Kolors Studio"), "the studio screen is gone")
            #expect(screen.contains("TTY: icanon echo TTY_END"), "canonical mode and echo are back")
        }

        @Test("Esc cancels at once, keeps the preview, writes no file; Ctrl-G while busy queues")
        func cancelAndQueue() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-cancel")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/s"
            let t = try TmuxSession(command: Self.command(home: home, args: "--session \(E2E.q(session)) --preview blocks"))
            defer { t.kill() }
            t.waitFor(text: "DEMO: random-weight", timeout: 20)
            // the demo starts small and fast; a big size keeps the job running while we queue and cancel
            t.keys("Tab", "Tab", "Tab", "Tab", "Tab", "Tab")     // Negative, Steps, CFG, Images, Seed, Size
            t.waitFor(text: "s swap")
            t.type("1024")
            t.keys("Enter")
            t.waitFor(text: "1024×1024")
            t.type("slow job")
            t.keys("C-g")
            t.waitFor(text: "#1 step 3/25", timeout: 60)
            t.keys("C-g")
            var screen = t.waitFor(text: "queued #2")
            #expect(screen.contains("… #2 queued"))
            let t0 = Date()
            t.keys("Escape")
            // the cancel lands within a fraction of a step, so "cancelling" may already have become "cancelled"
            screen = t.waitFor("Esc acknowledged", timeout: 2) { $0.contains("cancelling #1") || $0.contains("✗ #1 cancelled") }
            let ack = Date().timeIntervalSince(t0)
            #expect(ack < 1.0, "Esc acknowledged on screen in \(ack) s")
            screen = t.waitFor(text: "✗ #1 cancelled", timeout: 3)
            // #2 starts right after; drop it with Esc too
            t.waitFor(text: "#2 step", timeout: 60)
            t.keys("Escape")
            screen = t.waitFor(text: "✗ #2 cancelled", timeout: 3)
            #expect(screen.contains("▀"), "the last preview stays")
            let names = (try? FileManager.default.contentsOfDirectory(atPath: session)) ?? []
            #expect(names.filter { $0.hasSuffix(".png") || $0.contains(".tmp-") }.isEmpty, "no image and no half-written file: \(names)")
            t.keys("C-q")
            t.waitFor(text: "TTY_END")
        }

        @Test("resizing re-lays out; a too-small terminal gets a message; SIGTERM restores the terminal")
        func resizeAndSigterm() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-resize")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let t = try TmuxSession(command: Self.command(home: home, args: "--session \(E2E.q(home + "/s")) --preview blocks"))
            defer { t.kill() }
            t.waitFor(text: "Kolors Studio")
            let r1 = t.tmux("resize-window", "-x", "50", "-y", "15")
            #expect(r1.isEmpty, "resize-window: \(r1)")
            var screen = t.waitFor(text: "Terminal too small")
            #expect(screen.contains("50×15"))
            _ = t.tmux("resize-window", "-x", "90", "-y", "30")
            screen = t.waitFor(text: "Parameters")
            #expect(!screen.contains("Terminal too small"))
            let lines = screen.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.contains { $0.hasPrefix("┌ Prompt") && $0.hasSuffix("┐") && $0.count == 90 }, "the prompt box spans the new width")
            let pid = t.tmux("list-panes", "-F", "#{pane_pid}").trimmingCharacters(in: .whitespacesAndNewlines)
            // the studio is a child of the pane's shell
            let (_, children) = E2E.run(["pgrep", "-P", pid, "-f", "kolors"])
            let studio = children.split(separator: "\n").first.map(String.init) ?? ""
            #expect(!studio.isEmpty)
            _ = E2E.run(["kill", "-TERM", studio])
            screen = t.waitFor(text: "TTY_END")
            #expect(screen.contains("KOLORS_EXIT=143"))
            #expect(!screen.contains("Parameters"))
            #expect(screen.contains("TTY: icanon echo TTY_END"), "canonical mode and echo are back")
        }

        @Test("a long bracketed paste lands in the prompt exactly")
        func longPaste() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-paste")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/s"
            let t = try TmuxSession(command: Self.command(home: home, args: "--session \(E2E.q(session)) --preview none"))
            defer { t.kill() }
            t.waitFor(text: "Kolors Studio")
            var text = ""
            var i = 0
            while text.count < 5000 {
                text += ["masterpiece, ", "一只可爱的小猫，", "line \(i) ", "🐱 "][i % 4]
                i += 1
            }
            text = String(text.prefix(5000))
            t.paste(text)
            t.waitFor(text: "↑")          // the editor scrolled to the end of the long text
            t.keys("Tab", "Tab")
            t.type("1")
            t.keys("Enter", "C-g")
            t.waitFor(text: "saved 00001-", timeout: 90)
            let files = try FileManager.default.contentsOfDirectory(atPath: session).filter { $0.hasSuffix(".png") }
            let meta = try files.first.map { ImageMetadata.parse(try PNGFile.readText(session + "/" + $0).texts) }
            #expect(meta??.parameters.prompt == text)
            t.keys("C-c")                                      // Ctrl-C quits cleanly too
            let screen = t.waitFor(text: "TTY_END")
            #expect(screen.contains("KOLORS_EXIT=0") && screen.contains("TTY: icanon echo TTY_END"))
        }

        @Test("a model that cannot load is explained on screen, and a reopened session restores its history")
        func noEngineAndReopen() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-reopen")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/old"
            let p = GenerationParameters(prompt: "a lighthouse at dusk, 灯塔", negativePrompt: "fog", steps: 33, guidance: 6.5, seed: 4242)
            try GallerySession(directory: session).add(image: TestPatternGenerator.pattern(width: 64, height: 64, seed: 1),
                                                       record: ImageRecord(parameters: p))
            let t = try TmuxSession(command: Self.command(home: home, args: "--model /nonexistent/kolors --session \(E2E.q(session)) --preview blocks"))
            defer { t.kill() }
            var screen = t.waitFor(text: "No image engine", timeout: 20)
            #expect(screen.contains("/nonexistent/kolors: no such folder"))
            screen = t.waitFor(text: "a lighthouse at dusk, 灯塔")
            // the last image's parameters come back, but the seed mode stays "new each run": the next
            // Ctrl-G must not remake the same image
            let seedRow = screen.split(separator: "\n").first { $0.contains("Seed  ") } ?? ""
            #expect(seedRow.contains("new each run") && !seedRow.contains("4242"), "seed row: \(seedRow)")
            #expect(screen.contains("33"))
            t.keys("C-g")
            screen = t.waitFor(text: "✗ #1 failed")
            t.keys("C-o")
            screen = t.waitFor(text: "Gallery · session old · 1/1")
            #expect(screen.contains("00001-4242"))
            t.keys("o")
            t.waitFor(text: "Open a session")
            screen = t.waitFor(text: "1 image(s) (open)")
            #expect(screen.contains("old"))
            t.keys("Escape", "Escape")
            t.keys("C-q")
            t.waitFor(text: "TTY_END")
            // the default session folder lives under ~/.local/share when XDG_DATA_HOME is unset
            #expect(FileManager.default.fileExists(atPath: home + "/.local/share") == false, "nothing created without images")
        }

        @Test("KOLORS_TRUECOLOR=1 draws half blocks in 24-bit colour")
        func trueColour() throws {
            if Self.skipIfUnavailable() { return }
            guard E2E.run(["infocmp", "xterm-direct"]).0 == 0 else {
                print("skipping the true-colour test: no xterm-direct terminfo (Debian package ncurses-term)")
                return
            }
            let home = E2E.tempDir("e2e-rgb")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let p = GenerationParameters(prompt: "rgb", width: 64, height: 64)
            try GallerySession(directory: home + "/s").add(image: TestPatternGenerator.pattern(width: 64, height: 64, seed: 0),
                                                         record: ImageRecord(parameters: p))
            let t = try TmuxSession(command: Self.command(home: home, args: "--session \(E2E.q(home + "/s")) --preview blocks",
                                                          env: "KOLORS_TRUECOLOR=1"))
            defer { t.kill() }
            t.waitFor(text: "▀")
            let coloured = t.tmux("capture-pane", "-p", "-e")
            // the seed-0 pattern's top-left quadrant is (230, 40, 40) shaded: an exact RGB foreground shows up
            #expect(coloured.contains("38;2;"), "24-bit colours in the pane")
            #expect(!coloured.contains("38;5;"), "no 256-colour fallback")
            t.keys("C-q")
            t.waitFor(text: "TTY_END")
        }

        @Test("Ctrl-P loads a foreign A1111 PNG's parameters; the gallery favourites and deletes for real")
        func loadForeignAndGalleryEdits() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-foreign")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/s"
            let gallery = GallerySession(directory: session)
            for i in 1...2 {
                try gallery.add(image: TestPatternGenerator.pattern(width: 32, height: 32, seed: UInt64(i)),
                                record: ImageRecord(parameters: GenerationParameters(prompt: "image \(i)", seed: UInt64(i))))
            }
            let foreign = home + "/a1111.png"
            try PNGFile.write(RGBImage(width: 16, height: 16), to: foreign, texts: [PNGText(key: "parameters", value: """
                a castle on a hill, 城堡
                Negative prompt: blurry
                Steps: 31, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 777, Size: 832x1216, Model: sdxl
                """, kind: .international)])
            let t = try TmuxSession(command: Self.command(home: home, args: "--session \(E2E.q(session)) --preview blocks"))
            defer { t.kill() }
            t.waitFor(text: "image 2")                      // the session's last parameters are restored
            t.keys("C-p")
            t.waitFor(text: "Load all parameters from a PNG")
            t.type(foreign)
            t.keys("Enter")
            var screen = t.waitFor(text: "a castle on a hill, 城堡")
            screen = t.waitFor(text: "dpm++2m-karras")
            #expect(screen.contains("777") && screen.contains("832×1216") && screen.contains("31"))
            #expect(screen.contains("blurry"))
            // gallery: favourite the newest, delete the first
            t.keys("C-o")
            t.waitFor(text: "Gallery · session s · 2/2")
            t.keys("f")
            t.waitFor(text: "★ 00002-2")
            t.keys("Home", "d")
            t.waitFor(text: "Delete 00001-1.png? y = yes")
            t.keys("y")
            t.waitFor(text: "Gallery · session s · 1/1")
            t.keys("Escape", "C-q")
            t.waitFor(text: "TTY_END")
            #expect(!FileManager.default.fileExists(atPath: session + "/00001-1.png"))
            let (reopened, report) = try GallerySession.open(directory: session)
            #expect(reopened.entries.map(\.file) == ["00002-2.png"])
            #expect(reopened.entries.first?.favourite == true)
            #expect(!report.needsRepair)
        }

        @Test("--ip-adapter and --lora: a reference image with its thumbnail, the real engine, the PNG records adapter and LoRA; Ctrl-P restores them")
        func adapters() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-adapters")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let session = home + "/s"
            let repo = E2E.repo.path
            let lora = "Tests/Fixtures/loras/peft_lora.safetensors"
            let hash = try SafetensorsFile.shortHash(path: repo + "/" + lora)
            let t = try TmuxSession(command: Self.command(home: home, args: "--session \(E2E.q(session)) --preview blocks "
                + "--ip-adapter Tests/Fixtures/ip-adapter-plus --lora \(lora):0.7"))
            defer { t.kill() }
            t.waitFor(text: "DEMO: random-weight", timeout: 20)
            // the preloaded LoRA with its A1111 short hash, computed in the background
            var screen = t.waitFor(text: "peft_lora  0.70   \(hash)", timeout: 20)
            #expect(screen.contains("Reference image  (none: type a PNG path)"))
            t.type("a red fox")
            t.keys("Tab", "Tab")                      // Steps
            t.type("4")
            t.keys("Enter", "Tab", "Tab", "Tab", "Tab") // CFG, Images, Seed, Size (screen order)
            t.waitFor(text: "s swap")
            t.type("264")
            t.keys("Enter")
            t.waitFor(text: "Size  264×264")
            t.keys("Tab", "Tab", "Tab", "Tab")        // Sampler, Strength, Init image, Reference image
            t.waitFor(text: "Enter checks")
            // a file that is not a PNG: an error line
            t.type(lora)
            t.keys("Enter")
            t.waitFor(text: "✗ not a PNG file: peft_lora.safetensors")
            t.keys("Up", "C-u")
            t.type("Tests/Fixtures/references/ip_image_90x70.png")
            t.keys("Enter")
            t.waitFor(text: "90×70 PNG")
            // the thumbnail (loaded in the background) is drawn in half blocks beside the scale
            screen = t.waitFor("the reference thumbnail") { screen in
                let rows = screen.split(separator: "\n").filter { $0.contains("IP scale") || $0.contains("90×70 PNG") }
                return rows.count == 2 && rows.allSatisfy { $0.contains("│ ▀") }
            }
            #expect(!screen.contains("✗ not a PNG"), "the error line is gone")
            t.type("0.5")
            t.keys("Enter")
            t.waitFor(text: "IP scale  0.50")
            t.keys("C-g")
            screen = t.waitFor(text: "saved 00001-", timeout: 90)
            #expect(screen.contains("[IP 0.50 · LoRA peft_lora 0.70]"), "the job strip shows the adapters")
            let files = try FileManager.default.contentsOfDirectory(atPath: session).filter { $0.hasSuffix(".png") }
            #expect(files.count == 1)
            guard let file = files.first else { return }
            let texts = try PNGFile.readText(session + "/" + file).texts
            let meta = try #require(ImageMetadata.parse(texts))
            #expect(meta.source == .kolors)
            #expect(meta.parameters.prompt == "a red fox" && meta.parameters.steps == 4 && meta.parameters.width == 264)
            let ip = try #require(meta.parameters.ipAdapter)
            #expect(ip.path == repo + "/Tests/Fixtures/ip-adapter-plus")
            #expect(ip.image == repo + "/Tests/Fixtures/references/ip_image_90x70.png")
            #expect(ip.scale == 0.5)
            #expect(meta.parameters.loras == [.init(path: repo + "/" + lora, weight: 0.7, hash: hash)])
            let a1111 = try #require(texts.first { $0.key == "parameters" }?.value)
            #expect(a1111.hasPrefix("a red fox <lora:peft_lora:0.7>\n"))
            #expect(a1111.contains("Lora hashes: \"peft_lora: \(hash)\"") && a1111.contains("IP-Adapter image: ip_image_90x70.png")
                    && a1111.contains("IP-Adapter scale: 0.5"))
            // change the fields, then Ctrl-P the saved PNG: the reference, its scale and the LoRA come back
            t.keys("Right", "Right", "Tab", "d")      // scale 0.60, LoRAs: remove peft_lora
            t.waitFor(text: "LoRAs  none")
            t.keys("C-p")
            t.waitFor(text: "Load all parameters from a PNG")
            t.type(session + "/" + file)
            t.keys("Enter")
            screen = t.waitFor(text: "peft_lora  0.70   \(hash)")
            screen = t.waitFor(text: "90×70 PNG")
            #expect(screen.contains("IP scale  0.50") && screen.contains("a red fox"))
            t.keys("C-q")
            screen = t.waitFor(text: "TTY_END")
            #expect(screen.contains("KOLORS_EXIT=0"))
        }

        @Test("a crash (Swift runtime trap) still restores the terminal")
        func crashRestores() throws {
            if Self.skipIfUnavailable() { return }
            let home = E2E.tempDir("e2e-crash")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let t = try TmuxSession(command: Self.command(home: home, args: "--session \(E2E.q(home + "/s")) --preview blocks",
                                                          env: "KOLORS_STUDIO_TEST_CRASH_AFTER=0.5 SWIFT_BACKTRACE=enable=no"))
            defer { t.kill() }
            t.waitFor(text: "Kolors Studio")
            let screen = t.waitFor(text: "TTY_END")
            #expect(!screen.contains("KOLORS_EXIT=0"), "it did crash")
            #expect(!screen.contains("Parameters"), "the studio screen is gone (alternate screen left)")
            #expect(screen.contains("TTY: icanon echo TTY_END"), "canonical mode and echo are back")
        }

        @Test("a missing or unknown TERM gives a one-line message and no ncurses")
        func badTerm() {
            if Self.skipIfUnavailable() { return }
            let (rc, out) = E2E.run(["env", "-u", "TERM", E2E.binary, "studio"])
            #expect(rc == 2)
            #expect(out.contains("TERM is not set"))
            #expect(!out.contains("\u{1B}["))
            let (rc2, out2) = E2E.run(["env", "TERM=no-such-terminal-kolors", E2E.binary, "studio"])
            #expect(rc2 == 2)
            #expect(out2.contains("no-such-terminal-kolors"))
            #expect(out2.split(separator: "\n").count == 1)
            // a terminal without cursor addressing (TERM=dumb: Emacs shells, some CI logs) would show a blank screen
            let (rc3, out3) = E2E.run(["env", "TERM=dumb", E2E.binary, "studio"])
            #expect(rc3 == 2)
            #expect(out3.contains("TERM=dumb cannot move the cursor"), "\(out3)")
            #expect(out3.split(separator: "\n").count == 1 && !out3.contains("\u{1B}["))
        }
    }
}
