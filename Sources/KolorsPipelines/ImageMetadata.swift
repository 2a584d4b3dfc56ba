import Foundation
import KolorsEngine
import KolorsImageIO

/// Our own complete record of how an image was made, stored as JSON in an iTXt chunk keyed
/// `kolors`. It holds every setting, so an image can be reproduced exactly.
public struct ImageRecord: Codable, Sendable, Equatable {
    /// Record format tag; readers accept any `kolors-studio/…` value and ignore unknown keys.
    public var format: String
    /// The program that wrote the image, e.g. "kolors-studio 0.1.0".
    public var software: String
    public var parameters: GenerationParameters
    /// Index of this image within its batch (`imagesPerPrompt` > 1).
    public var batchIndex: Int
    /// ISO 8601 time the image was finished, when known.
    public var created: String?
    /// Wall time the whole job took, in seconds, when known.
    public var seconds: Double?
    /// The engine's arithmetic ("fp32", "bf16"): bf16 images differ slightly from fp32 ones.
    public var precision: String?

    public static let currentFormat = "kolors-studio/1"

    public init(parameters: GenerationParameters, batchIndex: Int = 0, created: String? = nil, seconds: Double? = nil,
                software: String = ImageMetadata.software) {
        self.format = ImageRecord.currentFormat
        self.software = software
        self.parameters = parameters
        self.batchIndex = batchIndex
        self.created = created
        self.seconds = seconds
    }
}

/// What `ImageMetadata.parse` found in a PNG.
public struct ParsedImageMetadata: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// Our JSON record (`kolors` chunk): complete.
        case kolors
        /// A1111-style `parameters` text (ours or another tool's): the fields it carries.
        case a1111
    }
    public var parameters: GenerationParameters
    public var source: Source
    public var batchIndex: Int
    /// Our full record when the source is `.kolors`.
    public var record: ImageRecord?
    /// Settings that could not be carried over (unknown sampler, negative seed …).
    public var warnings: [String]
    /// Every key/value of the A1111 parameter line, in order (empty for `.kolors`).
    public var fields: [(key: String, value: String)]

    public init(parameters: GenerationParameters, source: Source, batchIndex: Int = 0, record: ImageRecord? = nil,
                warnings: [String] = [], fields: [(key: String, value: String)] = []) {
        self.parameters = parameters
        self.source = source
        self.batchIndex = batchIndex
        self.record = record
        self.warnings = warnings
        self.fields = fields
    }

    public static func == (a: ParsedImageMetadata, b: ParsedImageMetadata) -> Bool {
        a.parameters == b.parameters && a.source == b.source && a.batchIndex == b.batchIndex && a.record == b.record
            && a.warnings == b.warnings && a.fields.map { "\($0.key)=\($0.value)" } == b.fields.map { "\($0.key)=\($0.value)" }
    }
}

/// PNG text chunks for generated images, and the parser that reads them back (also from
/// images made by A1111, Forge, ComfyUI's A1111 nodes and other tools writing `parameters`).
public enum ImageMetadata {
    /// Key of the A1111-style text chunk.
    public static let parametersKey = "parameters"
    /// Key of our JSON record (an iTXt chunk).
    public static let recordKey = "kolors"
    /// Written into `Version:` and `software`.
    public static var software: String { "kolors-studio \(KolorsVersion.string)" }

    // MARK: - writing

    /// The chunks for one image: `parameters` (tEXt when Latin-1, iTXt otherwise) and `kolors` (iTXt JSON).
    public static func texts(for record: ImageRecord) -> [PNGText] {
        [
            PNGText.automatic(key: parametersKey, value: a1111Parameters(record.parameters, batchIndex: record.batchIndex,
                                                                         software: record.software)),
            PNGText(key: recordKey, value: json(record), kind: .international),
        ]
    }

    /// The record as compact JSON with sorted keys (stable across runs).
    public static func json(_ record: ImageRecord) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(record)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The A1111 `parameters` text:
    /// ```
    /// <prompt>
    /// Negative prompt: <negative>      (omitted when empty)
    /// Steps: 25, Sampler: Euler, CFG scale: 5.0, Seed: 66, Size: 1024x1024, Model: Kolors, Version: kolors-studio 0.1.0
    /// ```
    public static func a1111Parameters(_ p: GenerationParameters, batchIndex: Int = 0,
                                       software: String = ImageMetadata.software) -> String {
        // A1111 keeps LoRAs in the prompt as <lora:name:weight> tags.
        let tags = p.loras.map { "<lora:\($0.name):\(formatFloat($0.weight))>" }.joined(separator: " ")
        var lines: [String] = [tags.isEmpty ? p.prompt : (p.prompt.isEmpty ? tags : p.prompt + " " + tags)]
        if !p.negativePrompt.isEmpty { lines.append("Negative prompt: \(p.negativePrompt)") }
        var kv: [(String, String)] = [("Steps", "\(p.steps)")]
        if let s = p.schedulerKind {
            kv.append(("Sampler", s.a1111.sampler))
            if let t = s.a1111.scheduleType { kv.append(("Schedule type", t)) }
        } else {
            kv.append(("Sampler", p.scheduler))
        }
        kv.append(("CFG scale", formatFloat(p.guidance)))
        kv.append(("Seed", "\(p.seed)"))
        kv.append(("Size", "\(p.width)x\(p.height)"))
        kv.append(("Model", p.model))
        if p.initImage != nil { kv.append(("Denoising strength", formatFloat(p.strength))) }
        if let n = p.deepCacheInterval { kv.append(("DeepCache interval", "\(n)")) }
        let hashes = p.loras.compactMap { l in l.hash.map { "\(l.name): \($0)" } }
        if !hashes.isEmpty { kv.append(("Lora hashes", hashes.joined(separator: ", "))) }
        if let ip = p.ipAdapter {
            kv.append(("IP-Adapter", ip.path.split(separator: "/").last.map(String.init) ?? ip.path))
            kv.append(("IP-Adapter image", ip.image.split(separator: "/").last.map(String.init) ?? ip.image))
            kv.append(("IP-Adapter scale", formatFloat(ip.scale)))
        }
        if p.imagesPerPrompt > 1 {
            kv.append(("Batch size", "\(p.imagesPerPrompt)"))
            kv.append(("Batch pos", "\(batchIndex)"))
        }
        kv.append(("Version", software))
        lines.append(kv.map { "\($0.0): \(quote($0.1))" }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    /// A1111's `quote`: values with `,` `:` or a newline become JSON strings.
    public static func quote(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == ":" || $0 == "\n" || $0 == "\r\n" }) else { return value }
        var out = "\""
        for u in value.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// Reverses `quote` (JSON string unescaping); returns the input when it is not a valid JSON string.
    public static func unquote(_ value: String) -> String {
        guard value.count >= 2, value.first == "\"", value.last == "\"" else { return value }
        let data = Data(value.utf8)
        if let s = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? String { return s }
        return value
    }

    /// Shortest decimal that reads back as the same Float ("5.0", "6.5", "0.3").
    public static func formatFloat(_ x: Float) -> String {
        let s = "\(x)"
        return s.contains(".") || s.contains("e") || s.contains("n") || s.contains("i") ? s : s + ".0"
    }

    // MARK: - reading

    /// Parses the text chunks of a PNG: our JSON record when present and valid, otherwise the
    /// A1111 `parameters` text. Returns nil when neither is there.
    public static func parse(_ texts: [PNGText]) -> ParsedImageMetadata? {
        var warnings: [String] = []
        if let json = texts.first(where: { $0.key == recordKey })?.value {
            if let record = try? JSONDecoder().decode(ImageRecord.self, from: Data(json.utf8)),
               record.format.hasPrefix("kolors-studio/") {
                return ParsedImageMetadata(parameters: record.parameters, source: .kolors, batchIndex: record.batchIndex,
                                           record: record, warnings: [], fields: [])
            }
            warnings.append("the kolors record is damaged; parameters read from the A1111 text instead")
        }
        if let text = texts.first(where: { $0.key == parametersKey })?.value, var parsed = parseA1111(text) {
            parsed.warnings.insert(contentsOf: warnings, at: 0)
            return parsed
        }
        return nil
    }

    /// The longest `parameters` text parsed (UTF-8 bytes). Real ones are a few kB; a prompt
    /// pasted whole may reach tens of kB. Longer text is not parsed at all.
    public static let maxParametersBytes = 256 << 10

    /// All key/value pairs on one A1111 parameter line: what A1111's pattern
    /// `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)` finds with repeated searches,
    /// computed by a hand-written scanner in one left-to-right pass (the regex backtracks:
    /// quadratic on a long line without colons). Values keep their quotes.
    public static func parameterPairs(_ line: String) -> [(key: String, value: String)] {
        let c = Array(line)
        let n = c.count
        func isWord(_ ch: Character) -> Bool { ch.isLetter || ch.isNumber || ch == "_" }
        func inKey(_ ch: Character) -> Bool { isWord(ch) || ch == " " || ch == "-" || ch == "/" }
        var pairs: [(key: String, value: String)] = []
        var p = 0
        while p < n {
            // \s* then the key: a word character and at least one more key character, then ':'.
            // The key is the whole run of key characters (a shorter one is never followed by
            // ':'), so when it fails every start inside the run fails the same way: resume
            // after the run, which keeps the pass linear.
            var q = p
            while q < n && c[q].isWhitespace { q += 1 }
            guard q < n else { break }
            guard isWord(c[q]) else { p = q + 1; continue }
            var r = q + 1
            while r < n && inKey(c[r]) { r += 1 }
            guard r - q >= 2, r < n, c[r] == ":" else { p = max(r, p + 1); continue }
            let key = String(c[q..<r])
            var v = r + 1
            while v < n && c[v].isWhitespace { v += 1 }
            // A quoted value (backslash escapes, at least one character) counts only when a
            // comma or the end follows its closing quote; otherwise the value runs to the comma.
            if v < n && c[v] == "\"" {
                var j = v + 1, inner = 0, closed = false
                while j < n {
                    if c[j] == "\\" {
                        guard j + 1 < n else { break }
                        j += 2
                    } else if c[j] == "\"" {
                        closed = true
                        break
                    } else {
                        j += 1
                    }
                    inner += 1
                }
                if closed && inner > 0 && (j + 1 == n || c[j + 1] == ",") {
                    pairs.append((key, String(c[v...j])))
                    p = j + 2
                    continue
                }
            }
            var e = v
            while e < n && c[e] != "," { e += 1 }
            pairs.append((key, String(c[v..<e])))
            p = e + 1
        }
        return pairs
    }

    /// Takes A1111's `<lora:NAME>` / `<lora:NAME:WEIGHT…>` tags out of a prompt (as the pattern
    /// `<lora:([^:>]+)(?::([-+0-9.eE]+))?[^>]*>` would, scanned once): the prompt without the
    /// tags, and each tag's name and weight (1 when absent or not a number).
    static func extractLoRATags(_ prompt: String) -> (prompt: String, loras: [GenerationParameters.LoRASettings]) {
        let c = Array(prompt)
        let n = c.count
        let opener = Array("<lora:")
        var out: [Character] = []
        out.reserveCapacity(n)
        var loras: [GenerationParameters.LoRASettings] = []
        var i = 0
        // Where the next '>' is at or after a position (none left: no further tag can close).
        var nextClose = 0
        while i < n {
            guard c[i] == "<", i + opener.count <= n, Array(c[i..<(i + opener.count)]) == opener else {
                out.append(c[i]); i += 1; continue
            }
            let nameStart = i + opener.count
            var k = nameStart
            while k < n && c[k] != ":" && c[k] != ">" { k += 1 }
            guard k > nameStart else { out.append(c[i]); i += 1; continue }
            var weight: Float = 1
            if k < n && c[k] == ":" {
                var w = k + 1
                while w < n && "+-0123456789.eE".contains(c[w]) { w += 1 }
                if w > k + 1, let f = Float(String(c[(k + 1)..<w])), f.isFinite { weight = f }
            }
            if nextClose < k { nextClose = k }
            while nextClose < n && c[nextClose] != ">" { nextClose += 1 }
            guard nextClose < n else { out.append(contentsOf: c[i...]); break }
            loras.append(.init(path: String(c[nameStart..<k]), weight: weight))
            i = nextClose + 1
        }
        return (String(out), loras)
    }

    /// Runs of spaces become one space, and spaces around line breaks go (what removing LoRA
    /// tags leaves behind), in one pass.
    static func tidySpaces(_ text: String) -> String {
        var out = ""
        var pendingSpace = false
        for ch in text {
            if ch == " " { pendingSpace = true; continue }
            if ch == "\n" {
                pendingSpace = false
                out.append(ch)
                continue
            }
            if pendingSpace && !(out.last == "\n") { out.append(" ") }
            pendingSpace = false
            out.append(ch)
        }
        if pendingSpace && !out.isEmpty && out.last != "\n" { out.append(" ") }
        return out
    }

    /// Parses A1111 `parameters` text into our parameters. Unknown keys are kept in `fields`;
    /// settings we cannot honour are listed in `warnings`. Returns nil for empty text and for
    /// text over `maxParametersBytes`. Linear in the text's length.
    public static func parseA1111(_ text: String) -> ParsedImageMetadata? {
        guard text.utf8.count <= maxParametersBytes else { return nil }
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !normalized.isEmpty else { return nil }
        var lines = normalized.components(separatedBy: "\n")
        var lastLine = lines.removeLast()
        if parameterPairs(lastLine).count < 3 {
            lines.append(lastLine)
            lastLine = ""
        }
        var prompt = "", negative = ""
        var doneWithPrompt = false
        for raw in lines {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("Negative prompt:") {
                doneWithPrompt = true
                line = String(line.dropFirst("Negative prompt:".count)).trimmingCharacters(in: .whitespaces)
            }
            if doneWithPrompt {
                negative += (negative.isEmpty ? "" : "\n") + line
            } else {
                prompt += (prompt.isEmpty ? "" : "\n") + line
            }
        }
        // <lora:name:weight> tags in the prompt are LoRA settings, not text for the model.
        let (untagged, loras) = extractLoRATags(prompt)
        if !loras.isEmpty {
            prompt = tidySpaces(untagged).trimmingCharacters(in: .whitespaces)
        }
        var p = GenerationParameters(prompt: prompt, negativePrompt: negative, loras: loras)
        var warnings: [String] = []
        var fields: [(key: String, value: String)] = []
        var sampler: String?
        var scheduleType: String?
        var batchIndex = 0
        for (key, rawValue) in parameterPairs(lastLine) {
            let value = rawValue.hasPrefix("\"") && rawValue.hasSuffix("\"") && rawValue.count >= 2 ? unquote(rawValue) : rawValue
            let v = value.trimmingCharacters(in: .whitespaces)
            fields.append((key, v))
            switch key {
            case "Steps":
                if let n = Int(v), n > 0 { p.steps = n } else { warnings.append("Steps '\(v)' is not a number") }
            case "Sampler": sampler = v
            case "Schedule type": scheduleType = v
            case "CFG scale":
                if let g = Float(v), g.isFinite { p.guidance = g } else { warnings.append("CFG scale '\(v)' is not a number") }
            case "Seed":
                if let s = UInt64(v) { p.seed = s } else if let s = Int64(v) {
                    warnings.append("seed \(s) is negative (random in A1111); kept the default seed")
                } else { warnings.append("Seed '\(v)' is not a number") }
            case "Size":
                let parts = v.lowercased().split(separator: "x")
                if parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0 {
                    p.width = w
                    p.height = h
                } else { warnings.append("Size '\(v)' is not W×H") }
            case "Model": p.model = v
            case "Denoising strength":
                if let s = Float(v), s.isFinite { p.strength = s }
            case "Batch size":
                if let n = Int(v), n > 0 { p.imagesPerPrompt = n }
            case "Batch pos":
                if let n = Int(v), n >= 0 { batchIndex = n }
            case "DeepCache interval":
                if let n = Int(v), (2...10).contains(n) { p.deepCacheInterval = n }
            case "Lora hashes":
                // The first LoRA of each name gets the hash (a dictionary: linear however many).
                var firstIndex: [String: Int] = [:]
                for (i, l) in p.loras.enumerated() where firstIndex[l.path] == nil { firstIndex[l.path] = i }
                for item in v.split(separator: ",") {
                    let parts = item.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    if parts.count == 2, let i = firstIndex[parts[0]] { p.loras[i].hash = parts[1] }
                }

            default: break
            }
        }
        if let sampler {
            if let s = SchedulerKind.fromA1111(sampler: sampler, scheduleType: scheduleType) {
                p.scheduler = s.rawValue
            } else {
                let full = scheduleType.map { "\(sampler) (\($0))" } ?? sampler
                warnings.append("sampler '\(full)' is not available; using \(p.scheduler)")
            }
        }
        return ParsedImageMetadata(parameters: p, source: .a1111, batchIndex: batchIndex, record: nil,
                                   warnings: warnings, fields: fields)
    }
}
