import ArgumentParser
import Foundation
import KolorsEngine
import KolorsModels

/// `kolors tokenize`: prints what KolorsPipeline's tokenizer makes of each text.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize texts as the Kolors pipeline does (ChatGLM tokenizer, 256 tokens).",
        discussion: """
        Prints one JSON line per text: {"input_ids":[…],"attention_mask":[…],"position_ids":[…]}, \
        each 256 long, left-padded, starting with [gMASK] sop — exactly what diffusers' \
        KolorsPipeline feeds the ChatGLM3 text encoder.
        """
    )

    @Option(name: .long, help: "A Kolors-diffusers folder, a Hugging Face cache folder, or a repository id.")
    var model: String

    /// Far beyond ChatGLM3's 32k context; each text's three rows are this long.
    static let maxLengthLimit = 65536

    @Option(name: .long, help: "Sequence length, 2…\(maxLengthLimit) (the pipeline uses 256).")
    var maxLength: Int = 256

    @Argument(help: "Texts to tokenize (put -- before texts that start with a dash).")
    var texts: [String] = []

    func run() throws {
        guard (2...Self.maxLengthLimit).contains(maxLength) else {
            throw UsageError("--max-length must be between 2 and \(Self.maxLengthLimit) (got \(maxLength))")
        }
        let tokenizer = try ChatGLMTokenizer.load(from: try DiffusersModel(model))
        var output = ""
        for text in texts {
            let batch = tokenizer(text, maxLength: maxLength)
            output += "{\"input_ids\":\(Self.list(batch.inputIds[0]))"
                + ",\"attention_mask\":\(Self.list(batch.attentionMask[0]))"
                + ",\"position_ids\":\(Self.list(batch.positionIds[0]))}\n"
        }
        FileHandle.standardOutput.write(Data(output.utf8))
    }

    private static func list(_ values: [Int32]) -> String {
        "[" + values.map(String.init).joined(separator: ",") + "]"
    }
}
