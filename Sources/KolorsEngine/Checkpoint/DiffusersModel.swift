import Foundation

/// Which weight files to prefer when a component has several.
public enum WeightVariant: String, Sendable, CaseIterable {
    /// `*.fp16.safetensors` first (what Kwai-Kolors/Kolors-diffusers ships), then plain.
    case fp16
    /// Plain `*.safetensors` first (full precision), then the fp16 variant.
    case full
}

/// A diffusers pipeline folder: `model_index.json` plus one sub-folder per component, each
/// with a `config.json` and safetensors weights.
public struct DiffusersModel: Sendable {
    public struct Component: Sendable, Equatable {
        public let name: String
        public let library: String
        public let className: String
    }

    public let root: String
    public let pipelineClass: String
    public let components: [Component]
    /// `model_index.json` as parsed (for pipeline flags such as force_zeros_for_empty_prompt).
    public let index: JSONValue

    /// Opens the folder `spec` resolves to (see `ModelLocator`).
    public init(_ spec: String) throws {
        root = try ModelLocator.resolve(spec)
        let path = root + "/model_index.json"
        let data: Data
        do { data = try RegularFile.read(path) } catch let e as RegularFileError {
            throw CheckpointError(e.missing ? "\(path): cannot read (a dangling symlink means an incomplete download)" : e.description)
        }
        do { index = try StrictJSONParser.parse([UInt8](data)) } catch {
            throw CheckpointError("\(path): not valid JSON (\(error))")
        }
        guard let members = index.objectValue else { throw CheckpointError("\(path): not a JSON object") }
        pipelineClass = index["_class_name"]?.stringValue ?? "?"
        var comps: [Component] = []
        for (key, value) in members where !key.hasPrefix("_") {
            guard let pair = value.arrayValue, pair.count == 2,
                  let lib = pair[0].stringValue, let cls = pair[1].stringValue else { continue }
            comps.append(Component(name: key, library: lib, className: cls))
        }
        components = comps
    }

    public func component(_ name: String) -> Component? { components.first { $0.name == name } }

    public func directory(of component: String) -> String { root + "/" + component }

    /// A boolean flag from model_index.json.
    public func flag(_ key: String) -> Bool? {
        if case .bool(let b)? = index[key] { return b }
        return nil
    }

    /// Decodes `<component>/config.json`.
    public func config<T: Decodable>(_ component: String, as type: T.Type) throws -> T {
        try ConfigFile.decode(type, path: directory(of: component) + "/config.json", component: component)
    }

    /// The weight files of a component, resolved in this order (for `.fp16`):
    /// `<base>.fp16.safetensors`, the fp16 shards of `<base>.safetensors.index.fp16.json`
    /// (`<base>.fp16-0000N-of-0000M.safetensors`), then the plain `<base>.safetensors` and
    /// `<base>.safetensors.index.json`, so an fp16 variant wins whether it is sharded or not;
    /// `.full` tries the plain files first. Pickle `.bin` files are never loaded.
    public func weightLocation(_ component: String, variant: WeightVariant = .fp16) throws -> WeightLocation {
        let dir = directory(of: component)
        let fm = FileManager.default
        guard fm.fileExists(atPath: dir) else {
            throw CheckpointError("\(component): folder \(dir) is missing")
        }
        for base in ["diffusion_pytorch_model", "model"] {
            let single = ["\(base).fp16.safetensors", "\(base).safetensors"]
            let index = ["\(base).safetensors.index.fp16.json", "\(base).safetensors.index.json"]
            let order = variant == .fp16 ? [single[0], index[0], single[1], index[1]]
                                         : [single[1], index[1], single[0], index[0]]
            for name in order {
                let path = dir + "/" + name
                guard fm.fileExists(atPath: path) else {
                    if (try? fm.destinationOfSymbolicLink(atPath: path)) != nil {
                        throw CheckpointError("\(component): \(name) is a dangling symlink (incomplete download?)")
                    }
                    continue
                }
                return name.hasSuffix(".json") ? .sharded(index: path) : .single(path)
            }
        }
        let files = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
        if let pickle = files.sorted().first(where: Pickles.isPickle) {
            let wanted = component == "text_encoder"
                ? "model.fp16-0000N-of-0000M.safetensors with model.safetensors.index.fp16.json"
                : "diffusion_pytorch_model.fp16.safetensors"
            throw CheckpointError(Pickles.refusal("\(component)/\(pickle)",
                                                  instead: "the safetensors weights of \(ModelLocator.defaultRepository) instead (\(component)/\(wanted))"))
        }
        throw CheckpointError("\(component): no safetensors weights in \(dir)")
    }

    /// Opens a component's weights.
    public func weights(_ component: String, variant: WeightVariant = .fp16) throws -> SafetensorsArchive {
        switch try weightLocation(component, variant: variant) {
        case .single(let p): return try SafetensorsArchive(paths: [p])
        case .sharded(let idx): return try SafetensorsArchive(index: idx)
        }
    }
}

/// Where a component's weights are.
public enum WeightLocation: Sendable, Equatable {
    case single(String)
    case sharded(index: String)
}

/// `config.json` decoding with messages that name the file and the key. Configs that are
/// `ValidatedConfig` are range-checked right after decoding.
public enum ConfigFile {
    public static func decode<T: Decodable>(_ type: T.Type, path: String, component: String) throws -> T {
        let data: Data
        do { data = try RegularFile.read(path) } catch let e as RegularFileError {
            throw CheckpointError(e.missing ? "\(component): \(path) is missing or unreadable" : "\(component): \(e)")
        }
        let value: T
        do {
            value = try JSONDecoder().decode(type, from: data)
        } catch DecodingError.keyNotFound(let key, let ctx) {
            let at = (ctx.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            throw CheckpointError("\(component)/config.json: missing required key '\(at)'")
        } catch DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx) {
            let at = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw CheckpointError("\(component)/config.json: key '\(at)' has the wrong type (\(ctx.debugDescription))")
        } catch DecodingError.dataCorrupted(let ctx) {
            let at = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw CheckpointError("\(component)/config.json: invalid\(at.isEmpty ? " JSON" : " value for '\(at)'") (\(ctx.debugDescription))")
        } catch let e as CheckpointError {
            throw CheckpointError("\(component)/config.json: \(e.message)")
        }
        try (value as? ValidatedConfig)?.validate()
        return value
    }
}
