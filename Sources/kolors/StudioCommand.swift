import ArgumentParser
import Foundation
import KolorsStudio
import KolorsStudioCore
import KolorsTerminal

extension PreviewMode: ExpressibleByArgument {}

struct StudioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "studio",
        abstract: "The terminal studio: edit prompts and parameters, watch live previews, browse the gallery.",
        discussion: """
        Keys: Ctrl-G generate · Esc cancel · Tab/Shift-Tab fields · Ctrl-O gallery · F1 help · Ctrl-Q quit.
        Images are saved with their parameters into the session folder (default: \
        $XDG_DATA_HOME/kolors-studio/sessions/<time>, or ~/.local/share/kolors-studio/sessions/<time>).
        The preview uses sixel graphics where the terminal has them and Unicode half blocks elsewhere; \
        KOLORS_PREVIEW=sixel|blocks|none overrides the detection (the --preview flag wins over it).
        """
    )

    @Option(help: "Kolors model: a diffusers folder, a Hugging Face cache folder or a repo id (default: the demo checkpoint or Kolors from the HF cache).")
    var model: String?

    @Option(help: "Session folder for this run's images (reopening one restores its history).")
    var session: String?

    @Option(help: "Preview drawing: auto, sixel, blocks or none.")
    var preview: PreviewMode = .auto

    @Option(help: "Colour theme: dark, light, high-contrast, or a path to a .theme file (F2 switches).")
    var theme: String?

    @Option(help: "Threads for the engine (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let options = StudioOptions(model: model, session: session, preview: preview, theme: theme, threads: threads)
        let factory: GeneratorFactory
        if let spec = ProcessInfo.processInfo.environment["KOLORS_STUDIO_TEST_GENERATOR"] {
            // Tests only: a labelled test-pattern generator (not a model) with `delay` seconds per step.
            let delay = Double(spec.split(separator: ":").dropFirst().first ?? "") ?? 0.05
            factory = { _, _ in TestPatternGenerator(stepDelay: delay) }
        } else {
            factory = makeStudioGenerator
        }
        let code: Int32
        do {
            code = try runStudio(options: options, makeGenerator: factory)
        } catch let e as TerminalError {
            FileHandle.standardError.write(Data("kolors studio: \(e.message)\n".utf8))
            throw ExitCode(2)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
