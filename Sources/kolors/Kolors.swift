import ArgumentParser
import Foundation
import KolorsEngine

@main
struct Kolors: ParsableCommand {
    /// oneDNN runs its primitives on OpenMP (libgomp) threads, which by default spin for a while
    /// after each parallel region; our own element-wise loops run on Dispatch threads, and on a
    /// 2-core machine the spinning thread takes a core from them. libgomp reads
    /// OMP_WAIT_POLICY only when it loads, before `main`, so where it is unset the process
    /// re-executes itself once with PASSIVE (A/B on a Zen 4, UNet 512² bf16: 10.25/10.38 s
    /// passive vs 12.02/10.89 s default). Set OMP_WAIT_POLICY yourself to choose otherwise.
    static func main() {
        if ProcessInfo.processInfo.environment["OMP_WAIT_POLICY"] == nil {
            setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)  // returns only when it failed: run on as we are
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            // Help and version requests print as ArgumentParser prints them; anything else is one
            // line (a malformed value, "--seed nan", would otherwise bring the whole usage text).
            let code = exitCode(for: error)
            if code == .success || error is CleanExit || error is ExitCode { exit(withError: error) }
            let message = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data((message.hasPrefix("Error:") ? message : "Error: " + message).utf8 + [10]))
            Foundation.exit(code.rawValue)
        }
    }

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
