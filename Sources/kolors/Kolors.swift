import ArgumentParser
import KolorsEngine

@main
struct Kolors: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kolors",
        abstract: "Kolors Studio: generate images with the Kolors text-to-image model on the CPU.",
        discussion: """
        Kolors Studio runs Kwai-Kolors (ChatGLM3 text encoder, SDXL-style UNet, SDXL VAE) in \
        process with its own CPU engine. Point it at a diffusers-layout download of \
        Kwai-Kolors/Kolors-diffusers with --model DIR.
        """,
        version: KolorsVersion.string,
        subcommands: [StudioCommand.self, GenerateCommand.self, InfoCommand.self, MetadataCommand.self, TokenizeCommand.self,
                      BenchCommand.self]
    )
}

/// A flag value a command refuses; printed as one line, "Error: <message>", with exit status 1
/// (ArgumentParser's ValidationError would add the usage text).
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
