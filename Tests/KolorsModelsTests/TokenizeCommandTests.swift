import Foundation
import Testing
import KolorsTestSupport

/// Runs the built `kolors tokenize` (.build/debug/kolors, which `scripts/test` builds).
@Suite("kolors tokenize")
struct TokenizeCommandTests {
    static let binary = TokenizerFixtures.root.appendingPathComponent(".build/debug/kolors").path

    func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test("prints one JSON line per text, as the pipeline tokenizes it",
          .enabled(if: FileManager.default.isExecutableFile(atPath: binary)))
    func output() throws {
        let ref = try TokenizerFixtures.load()
        let picks = [ref.cases[0], ref.cases[30], ref.cases[150]] + ref.cases.filter { $0.text.hasPrefix("-") }.prefix(1)
        let model = TokenizerFixtures.fixtures.appendingPathComponent("tiny-kolors").path
        let result = try run(["tokenize", "--model", model, "--"] + picks.map(\.text))
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == picks.count)
        for (line, c) in zip(lines, picks) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [Int]])
            #expect(Set(object.keys) == ["input_ids", "attention_mask", "position_ids"])
            #expect(object["input_ids"] == c.pipeline.inputIds.map(Int.init), "\(c.text.debugDescription)")
            #expect(object["attention_mask"] == c.pipeline.attentionMask.map(Int.init))
            #expect(object["position_ids"] == c.pipeline.positionIds.map(Int.init))
        }
    }

    @Test("a folder without a tokenizer gives a one-line error and a non-zero status",
          .enabled(if: FileManager.default.isExecutableFile(atPath: binary)))
    func missingModel() throws {
        let missing = try run(["tokenize", "--model", "/nonexistent/Kolors", "hello"])
        #expect(missing.status != 0)
        #expect(missing.stdout.isEmpty)
        #expect(missing.stderr.trimmingCharacters(in: .whitespacesAndNewlines) == "Error: /nonexistent/Kolors: no such folder")

        // A pipeline folder whose tokenizer is missing names the file it looked for.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-tok-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"_class_name": "KolorsPipeline", "tokenizer": ["kolors", "ChatGLMTokenizer"]}"#
            .write(toFile: dir + "/model_index.json", atomically: true, encoding: .utf8)
        let result = try run(["tokenize", "--model", dir, "hello"])
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!message.contains("\n"))
        #expect(message.contains(dir + "/tokenizer/tokenizer.model"))
    }
}
