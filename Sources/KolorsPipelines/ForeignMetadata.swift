import KolorsEngine
import KolorsImageIO

/// Generation settings another tool stored in its own PNG text chunks, as key/value fields in
/// the tool's own terms (for `kolors metadata`; the studio only loads ours and A1111's).
public struct ToolMetadata: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    /// "ComfyUI", "NovelAI", "InvokeAI".
    public var tool: String
    /// The chunk keys it came from.
    public var chunks: [String]
    public var fields: [Field]
    /// What could not be read (a chunk that is not JSON …).
    public var warnings: [String] = []
}

/// Readers for the text chunks of other image generators. Every chunk is parsed with the
/// strict, depth-limited JSON parser and walked with bounded work, so hostile chunks give
/// warnings, never traps or long runs.
public enum ForeignMetadata {
    /// Chunk keys the readers here (and `ImageMetadata`) understand; the rest are "other".
    public static let knownKeys: Set<String> = [
        ImageMetadata.recordKey, ImageMetadata.parametersKey, "prompt", "workflow", "Comment", "Description",
        "invokeai_metadata", "invokeai_graph",
    ]

    /// Every tool's settings found in `texts` (ComfyUI, NovelAI, InvokeAI), in that order.
    public static func parse(_ texts: [PNGText]) -> [ToolMetadata] {
        func value(_ key: String) -> String? { texts.first { $0.key == key }?.value }
        var out: [ToolMetadata] = []
        if value("prompt") != nil || value("workflow") != nil {
            out.append(comfyUI(prompt: value("prompt"), workflow: value("workflow")))
        }
        if let comment = value("Comment"), value("Software")?.hasPrefix("NovelAI") == true || comment.contains("\"uc\"") {
            out.append(novelAI(comment: comment, description: value("Description"), software: value("Software")))
        }
        if let invoke = value("invokeai_metadata") {
            out.append(invokeAI(invoke))
        }
        return out
    }

    /// Parses chunk text as JSON, or says why not.
    static func json(_ text: String, chunk: String) -> Result<JSONValue, ToolMetadataError> {
        do {
            return .success(try StrictJSONParser.parse(Array(text.utf8), maxDepth: 64))
        } catch {
            return .failure(ToolMetadataError(message: "the \(chunk) chunk is not valid JSON (\(error))"))
        }
    }

    /// A JSON scalar as text (strings as they are, numbers without a trailing ".0" for whole
    /// values); nil for arrays, objects and null.
    static func scalar(_ v: JSONValue?) -> String? {
        switch v {
        case .string(let s)?: return s
        case .int(let n)?: return String(n)
        case .double(let d)?: return d.isFinite && d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
        case .bool(let b)?: return b ? "true" : "false"
        default: return nil
        }
    }

    // MARK: - ComfyUI

    /// ComfyUI's `prompt` chunk (the API graph: node id → {class_type, inputs}) summarised from
    /// its first sampler node (lowest id): seed, steps, CFG, sampler, scheduler, denoise, the
    /// texts its positive and negative inputs lead to, the latent size, checkpoint and LoRAs
    /// on its model input. `workflow` (the editor's graph) only gives a node count.
    static func comfyUI(prompt: String?, workflow: String?) -> ToolMetadata {
        var meta = ToolMetadata(tool: "ComfyUI", chunks: [prompt != nil ? "prompt" : nil, workflow != nil ? "workflow" : nil].compactMap { $0 },
                                fields: [])
        if let workflow {
            switch json(workflow, chunk: "workflow") {
            case .success(let w):
                if let nodes = w["nodes"]?.arrayValue { meta.fields.append(.init("workflow nodes", String(nodes.count))) }
            case .failure(let e): meta.warnings.append(e.message)
            }
        }
        guard let prompt else { return meta }
        let graph: JSONValue
        switch json(prompt, chunk: "prompt") {
        case .success(let g): graph = g
        case .failure(let e):
            meta.warnings.append(e.message)
            return meta
        }
        guard let members = graph.objectValue else {
            meta.warnings.append("the prompt chunk is not a JSON object of nodes")
            return meta
        }
        var nodes: [String: JSONValue] = [:]
        for (id, node) in members where nodes[id] == nil { nodes[id] = node }
        func classType(_ id: String) -> String { nodes[id]?["class_type"]?.stringValue ?? "" }
        func inputs(_ id: String) -> JSONValue? { nodes[id]?["inputs"] }
        /// The node a link input points at: ["<id>", <output>].
        func linked(_ v: JSONValue?) -> String? {
            guard let pair = v?.arrayValue, pair.count == 2 else { return nil }
            return pair[0].stringValue ?? pair[0].intValue.map(String.init)
        }
        /// Follows links from `start` (at most 32 nodes) to the first node for which `pick`
        /// gives a value.
        func search(from start: String?, _ pick: (String) -> String?) -> String? {
            var queue = start.map { [$0] } ?? []
            var seen: Set<String> = []
            while !queue.isEmpty, seen.count < 32 {
                let id = queue.removeFirst()
                guard seen.insert(id).inserted else { continue }
                if let found = pick(id) { return found }
                for (_, v) in inputs(id)?.objectValue ?? [] where queue.count < 256 {
                    if let next = linked(v) { queue.append(next) }
                }
            }
            return nil
        }
        func text(_ id: String) -> String? {
            guard let i = inputs(id) else { return nil }
            return i["text"]?.stringValue ?? i["text_g"]?.stringValue ?? i["prompt"]?.stringValue
        }
        let ids = members.map(\.0)
        let samplers = ids.filter { classType($0).contains("Sampler") && inputs($0)?["positive"] != nil }
            .sorted { (Int($0) ?? Int.max, $0) < (Int($1) ?? Int.max, $1) }
        meta.fields.append(.init("nodes", String(nodes.count)))
        guard let sampler = samplers.first, let s = inputs(sampler) else {
            meta.warnings.append("no sampler node with a positive input")
            return meta
        }
        meta.fields.append(.init("sampler node", "\(sampler) (\(classType(sampler)))"))
        if samplers.count > 1 { meta.fields.append(.init("other sampler nodes", String(samplers.count - 1))) }
        for (key, name) in [("seed", "seed"), ("noise_seed", "seed"), ("steps", "steps"), ("cfg", "cfg"),
                            ("sampler_name", "sampler"), ("scheduler", "scheduler"), ("denoise", "denoise")] {
            if let v = scalar(s[key]) { meta.fields.append(.init(name, v)) }
        }
        if let p = search(from: linked(s["positive"]), text) { meta.fields.append(.init("prompt", p)) }
        if let n = search(from: linked(s["negative"]), text) { meta.fields.append(.init("negative prompt", n)) }
        if let latent = linked(s["latent_image"] ?? s["latent"]), let l = inputs(latent),
           let w = scalar(l["width"]), let h = scalar(l["height"]) {
            meta.fields.append(.init("size", "\(w)x\(h)"))
            if let b = scalar(l["batch_size"]) { meta.fields.append(.init("batch size", b)) }
        }
        if let ckpt = search(from: linked(s["model"]), { inputs($0)?["ckpt_name"]?.stringValue ?? inputs($0)?["unet_name"]?.stringValue }) {
            meta.fields.append(.init("model", ckpt))
        }
        // LoRA loaders along the model chain.
        var loras: [String] = []
        var next = linked(s["model"])
        var hops = 0
        while let id = next, hops < 32 {
            hops += 1
            if let name = inputs(id)?["lora_name"]?.stringValue {
                loras.append("\(name):\(scalar(inputs(id)?["strength_model"]) ?? "1")")
            }
            next = linked(inputs(id)?["model"])
        }
        if !loras.isEmpty { meta.fields.append(.init("LoRAs", loras.joined(separator: ", "))) }
        return meta
    }

    // MARK: - NovelAI

    /// NovelAI: `Description` holds the prompt, `Comment` a JSON object of settings.
    static func novelAI(comment: String, description: String?, software: String?) -> ToolMetadata {
        var meta = ToolMetadata(tool: "NovelAI", chunks: ["Comment"] + (description != nil ? ["Description"] : []), fields: [])
        if let software { meta.fields.append(.init("software", software)) }
        let settings: JSONValue
        switch json(comment, chunk: "Comment") {
        case .success(let v): settings = v
        case .failure(let e):
            meta.warnings.append(e.message)
            if let description { meta.fields.append(.init("prompt", description)) }
            return meta
        }
        if let p = settings["prompt"]?.stringValue ?? description { meta.fields.append(.init("prompt", p)) }
        if let uc = settings["uc"]?.stringValue { meta.fields.append(.init("negative prompt", uc)) }
        for (key, name) in [("steps", "steps"), ("scale", "scale"), ("seed", "seed"), ("sampler", "sampler"),
                            ("width", "width"), ("height", "height"), ("strength", "strength"), ("noise", "noise")] {
            if let v = scalar(settings[key]) { meta.fields.append(.init(name, v)) }
        }
        return meta
    }

    // MARK: - InvokeAI

    /// InvokeAI's `invokeai_metadata`: a flat JSON object (the model as an object with a name).
    static func invokeAI(_ text: String) -> ToolMetadata {
        var meta = ToolMetadata(tool: "InvokeAI", chunks: ["invokeai_metadata"], fields: [])
        switch json(text, chunk: "invokeai_metadata") {
        case .success(let v):
            guard let members = v.objectValue else {
                meta.warnings.append("the invokeai_metadata chunk is not a JSON object")
                return meta
            }
            for (key, value) in members.prefix(200) {
                if let s = scalar(value) {
                    meta.fields.append(.init(key, s))
                } else if let name = value["name"]?.stringValue ?? value["model_name"]?.stringValue {
                    meta.fields.append(.init(key, name))
                }
            }
        case .failure(let e):
            meta.warnings.append(e.message)
        }
        return meta
    }
}

/// Why a tool's chunk could not be read.
public struct ToolMetadataError: Error, Sendable {
    public let message: String
}
