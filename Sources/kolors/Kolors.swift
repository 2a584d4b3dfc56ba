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
        subcommands: [StudioCommand.self, GenerateCommand.self, InfoCommand.self, TokenizeCommand.self, BenchCommand.self]
    )
}
