import ArgumentParser
import Foundation
import KolorsImageIO
import KolorsPipelines

/// `kolors metadata`: the generation settings stored in PNGs, ours and other tools'.
struct MetadataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata",
        abstract: "Print the generation settings stored in PNG files (ours, A1111, ComfyUI, NovelAI, InvokeAI).",
        discussion: """
        Reads the text chunks of each PNG: our `kolors` record (every setting), A1111-style \
        `parameters` (also written by Forge, SD.Next, Fooocus …), ComfyUI's `prompt`/`workflow`, \
        NovelAI's `Comment` and InvokeAI's `invokeai_metadata`; other text chunks are listed as \
        they are. Prints text, or one JSON object per file with --json. Exits 1, with one line \
        on stderr per file, when a file is not a readable PNG or holds no generation settings.
        """
    )

    @Flag(name: .long, help: "One JSON object per file (one per line).")
    var json = false

    @Argument(help: "PNG files.")
    var files: [String] = []

    func run() throws {
        guard !files.isEmpty else { throw UsageError("give at least one PNG file") }
        var failed = false
        for file in files {
            do {
                let report = try Self.report(file)
                print(json ? report.json() : report.text())
            } catch {
                failed = true
                FileHandle.standardError.write(Data("kolors: \(file): \(Self.reason(error))\n".utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }

    /// Every setting found in one file; throws when there is none.
    static func report(_ file: String) throws -> MetadataReport {
        // Text before the image data is read without decoding pixels; only when that holds no
        // settings is the whole file read (a few writers put their chunks after the pixels).
        var texts = try PNGFile.readText(file).texts
        var report = MetadataReport(file: file, texts: texts)
        if !report.hasSettings, let all = try? PNGFile.read(file).texts {
            // (Pixels that cannot be decoded, or too many of them, leave the text read first.)
            texts = all
            report = MetadataReport(file: file, texts: texts)
        }
        guard report.hasSettings else {
            let keys = texts.map(\.key)
            var why = keys.isEmpty ? "no text chunks" : "text chunks: " + keys.prefix(8).joined(separator: ", ")
            if let p = texts.first(where: { $0.key == ImageMetadata.parametersKey }), p.value.utf8.count > ImageMetadata.maxParametersBytes {
                why += "; its parameters text is \(p.value.utf8.count) bytes, more than the \(ImageMetadata.maxParametersBytes) parsed"
            }
            throw MetadataError("no generation settings (\(why))")
        }
        return report
    }

    /// One line for any error.
    static func reason(_ error: Error) -> String {
        switch error {
        case let e as PNGError: return e.message
        case let e as MetadataError: return e.message
        default: return "\(error)".replacingOccurrences(of: "\n", with: " ")
        }
    }
}

struct MetadataError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// What `kolors metadata` prints for one file.
struct MetadataReport {
    let file: String
    /// Our record or A1111's text, parsed (the studio's reader).
    let parsed: ParsedImageMetadata?
    /// Other tools' chunks.
    let tools: [ToolMetadata]
    /// Text chunks no reader understood, as (key, value).
    let other: [PNGText]

    init(file: String, texts: [PNGText]) {
        self.file = file
        parsed = ImageMetadata.parse(texts)
        tools = ForeignMetadata.parse(texts)
        other = texts.filter { !ForeignMetadata.knownKeys.contains($0.key) }
    }

    /// Something was read: our record or A1111 text, or at least one field of a tool's chunk
    /// (a ComfyUI `prompt` that is not JSON gives warnings only).
    var hasSettings: Bool { parsed != nil || tools.contains { !$0.fields.isEmpty } }

    /// Values are shown on one line: line breaks as "\n", long values cut (the JSON has them whole).
    static func oneLine(_ s: String, limit: Int = 2000) -> String {
        let flat = s.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
        return flat.count > limit ? String(flat.prefix(limit)) + "… (\(flat.count) characters)" : flat
    }

    func text() -> String {
        var lines = ["\(file)"]
        func add(_ key: String, _ value: String) { lines.append("  " + key.padding(toLength: max(18, key.count + 1), withPad: " ", startingAt: 0) + Self.oneLine(value)) }
        if let parsed {
            let p = parsed.parameters
            switch parsed.source {
            case .kolors:
                lines.append("  source: kolors record (\(parsed.record?.software ?? "?"))")
                add("prompt", p.prompt)
                if !p.negativePrompt.isEmpty { add("negative prompt", p.negativePrompt) }
                add("steps", "\(p.steps)")
                add("guidance", ImageMetadata.formatFloat(p.guidance))
                add("seed", "\(p.seed)")
                add("size", "\(p.width)x\(p.height)")
                add("scheduler", p.scheduler)
                if p.imagesPerPrompt > 1 { add("batch", "image \(parsed.batchIndex + 1) of \(p.imagesPerPrompt)") }
                add("model", p.model)
                if let i = p.initImage { add("init image", "\(i) (strength \(ImageMetadata.formatFloat(p.strength)))") }
                if let ip = p.ipAdapter { add("IP-Adapter", "\(ip.path), image \(ip.image), scale \(ImageMetadata.formatFloat(ip.scale))") }
                for l in p.loras { add("LoRA", "\(l.path):\(ImageMetadata.formatFloat(l.weight))\(l.hash.map { " (\($0))" } ?? "")") }
                if let r = parsed.record {
                    if let precision = r.precision { add("precision", precision) }
                    if let created = r.created { add("created", created) }
                    if let seconds = r.seconds { add("seconds", String(format: "%.1f", seconds)) }
                }
            case .a1111:
                lines.append("  source: A1111 parameters")
                add("prompt", p.prompt)
                if !p.negativePrompt.isEmpty { add("negative prompt", p.negativePrompt) }
                for l in p.loras { add("LoRA", "\(l.name):\(ImageMetadata.formatFloat(l.weight))\(l.hash.map { " (\($0))" } ?? "")") }
                for f in parsed.fields { add(f.key, f.value) }
            }
            for w in parsed.warnings { lines.append("  warning: \(w)") }
        }
        for t in tools {
            lines.append("  source: \(t.tool) (\(t.chunks.joined(separator: ", ")))")
            for f in t.fields { add(f.key, f.value) }
            for w in t.warnings { lines.append("  warning: \(w)") }
        }
        if !other.isEmpty {
            lines.append("  other text chunks:")
            for t in other { add(t.key, t.value) }
        }
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        var object: [String: Any] = ["file": file]
        if let parsed {
            object["source"] = parsed.source == .kolors ? "kolors" : "a1111"
            let encoder = JSONEncoder()
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            if let data = try? encoder.encode(parsed.parameters), let p = try? JSONSerialization.jsonObject(with: data) {
                object["parameters"] = p
            }
            if let r = parsed.record, let data = try? encoder.encode(r), let record = try? JSONSerialization.jsonObject(with: data) {
                object["record"] = record
            }
            if parsed.source == .a1111 { object["fields"] = parsed.fields.map { [$0.key, $0.value] } }
            object["batchIndex"] = parsed.batchIndex
            object["warnings"] = parsed.warnings
        }
        object["tools"] = tools.map { t -> [String: Any] in
            ["tool": t.tool, "chunks": t.chunks, "fields": t.fields.map { [$0.key, $0.value] }, "warnings": t.warnings]
        }
        object["other"] = other.map { [$0.key, $0.value] }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
