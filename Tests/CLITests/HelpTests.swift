import Foundation
import Testing

/// `--help` names every value the flags take.
@Suite("kolors --help", .enabled(if: CLI.available))
struct HelpTests {
    @Test("studio and generate list every text encoder precision, int8-w8a8 included", arguments: ["studio", "generate"])
    func textEncoderPrecisions(command: String) throws {
        let r = try CLI.run([command, "--help"])
        #expect(r.status == 0, "\(r.stderr)")
        let help = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for value in ["fp16", "int8", "int8-w8a8"] { #expect(help.contains(value), "\(command) --help misses \(value)") }
        #expect(help.contains("int8-w8a8 (experimental"))
    }
}
