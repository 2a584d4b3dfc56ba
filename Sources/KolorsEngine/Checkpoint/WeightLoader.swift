import Foundation

/// How a model keeps its large weights.
public enum WeightResidency: Sendable {
    /// Converted to float32 once at load.
    case float32
    /// Left memory-mapped in the stored dtype, converted piecewise when used.
    case mapped
}

/// How the loader stores large weights (`WeightLoader.weight`), decided once for a model
/// instead of by the layers after they are built.
public struct WeightPolicy: @unchecked Sendable {
    /// float32 at load, or left mapped in the stored dtype.
    public var residency: WeightResidency
    /// The model runs each weight once per run (the text encoder: once per prompt), so a backend
    /// converts it block by block each time instead of keeping a prepared copy.
    public var usedOncePerRun: Bool
    /// Weights to quantize to int8 with per-row scales, by full name; nil: none.
    public var int8: ((String) -> Bool)?
    /// Already quantized matrices by name (an `Int8WeightCache` file), used instead of quantizing.
    public var int8Cached: ((String) -> Int8Matrix?)?
    /// A stored replacement by name and shape (a cache of converted weights, e.g. bf16), used
    /// instead of the checkpoint's tensor where it has one.
    public var replacement: ((String, [Int]) -> Weight?)?

    public init(residency: WeightResidency = .float32, usedOncePerRun: Bool = false, int8: ((String) -> Bool)? = nil,
                int8Cached: ((String) -> Int8Matrix?)? = nil) {
        self.residency = residency
        self.usedOncePerRun = usedOncePerRun
        self.int8 = int8
        self.int8Cached = int8Cached
    }
}

/// Hands a model constructor its parameters by diffusers name, checking each shape against
/// what the configuration implies, and remembering which tensors were used so that leftovers
/// can be reported. Error messages name the component, file, tensor, expected and found shape.
public final class WeightLoader: @unchecked Sendable {
    public let component: String
    public let archive: SafetensorsArchive
    public let policy: WeightPolicy
    public var residency: WeightResidency { policy.residency }
    /// Maps a diffusers name to the names it may be stored under (first match wins).
    private let aliases: (String) -> [String]
    /// Weights the caller computed instead of reading them (LoRA-merged copies, halves of a
    /// fused matrix), by diffusers name. They replace the stored tensor of the same name.
    private let overrides: [String: Weight]
    private var used: Set<String> = []
    private var converted = 0
    private let lock = NSLock()

    /// Bytes of float32 copies made so far (mapped weights count nothing).
    public var residentBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return converted
    }

    private func noteConverted(_ elements: Int) {
        lock.lock(); converted += elements * 4; lock.unlock()
    }

    public init(component: String, archive: SafetensorsArchive, policy: WeightPolicy,
                aliases: @escaping (String) -> [String] = { [$0] }, overrides: [String: Weight] = [:]) {
        self.component = component
        self.archive = archive
        self.policy = policy
        self.aliases = aliases
        self.overrides = overrides
    }

    public convenience init(component: String, archive: SafetensorsArchive, residency: WeightResidency = .float32,
                            aliases: @escaping (String) -> [String] = { [$0] }, overrides: [String: Weight] = [:]) {
        self.init(component: component, archive: archive, policy: WeightPolicy(residency: residency), aliases: aliases,
                  overrides: overrides)
    }

    /// The stored name for `name`, if any.
    public func storedName(_ name: String) -> String? {
        aliases(name).first { archive.contains($0) }
    }

    public func contains(_ name: String) -> Bool { overrides[name] != nil || storedName(name) != nil }


    private func locate(_ name: String, shape: [Int]) throws -> MappedTensor {
        guard let stored = storedName(name) else {
            let files = archive.files.map { ($0.path as NSString).lastPathComponent }.joined(separator: ", ")
            throw CheckpointError("\(component): tensor '\(name)' (shape \(shape)) is missing from \(files)")
        }
        let m = try archive.mapped(stored)
        let file = (m.file.path as NSString).lastPathComponent
        // Accept trailing singleton dimensions (old VAE attention weights are stored [C, C, 1, 1]).
        let found = m.shape
        let squeezedFound = Array(found.reversed().drop { $0 == 1 }.reversed())
        let squeezedWanted = Array(shape.reversed().drop { $0 == 1 }.reversed())
        guard found == shape || (squeezedFound == squeezedWanted && m.count == shape.reduce(1, *)) else {
            throw CheckpointError("\(component): \(file): tensor '\(stored)' has shape \(found), but the config implies \(shape)")
        }
        guard m.dtype.isConvertibleToFloat else {
            throw CheckpointError("\(component): \(file): tensor '\(stored)' has dtype \(m.dtype.rawValue), which is not a float type")
        }
        lock.lock(); used.insert(stored); lock.unlock()
        return m
    }

    /// A (possibly large) weight, stored as the policy says: int8 (from the cache or quantized
    /// now) where it asks for that, else resident or mapped per `residency` (which overrides the
    /// policy's for this one weight).
    public func weight(_ name: String, shape: [Int], residency: WeightResidency? = nil) throws -> Weight {
        let once = policy.usedOncePerRun
        if let o = overrides[name] {
            guard o.count == shape.reduce(1, *) else {
                throw CheckpointError("\(component): replacement for '\(name)' has shape \(o.shape), but the config implies \(shape)")
            }
            if let s = storedName(name) { lock.lock(); used.insert(s); lock.unlock() }
            return o
        }
        let m = try locate(name, shape: shape)
        if let r = policy.replacement?(name, shape) { return r }
        if shape.count == 2, policy.int8?(name) == true {
            if let cached = policy.int8Cached?(name), cached.rows == shape[0], cached.cols == shape[1] {
                return Weight(int8: cached, usedOncePerRun: once)
            }
            return Weight(int8: Int8Matrix(quantizing: Weight(mapped: m)), usedOncePerRun: once)
        }
        switch residency ?? self.residency {
        case .mapped where m.dtype != .f64 && m.dtype != .i64 && m.dtype != .i32:
            if m.shape == shape { return Weight(mapped: m, usedOncePerRun: once) }
            // Stored with other singleton dimensions (a 1×1 convolution kept as [out, in], say):
            // the same bytes, in the shape the layer asked for, as the resident path reshapes.
            let info = TensorInfo(name: m.info.name, dtype: m.dtype, shape: shape, range: m.info.range)
            return Weight(mapped: MappedTensor(info: info, data: m.data, file: m.file), usedOncePerRun: once)
        default:
            noteConverted(m.count)
            return Weight(try m.toFloat32().reshaped(shape), usedOncePerRun: once)
        }
    }

    /// A float32 tensor (biases, norm affines, small tables).
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        let m = try locate(name, shape: shape)
        noteConverted(m.count)
        return try m.toFloat32().reshaped(shape)
    }

    /// `tensor` if present, nil if absent (a wrong shape still throws).
    public func optionalTensor(_ name: String, shape: [Int]) throws -> Tensor? {
        contains(name) ? try tensor(name, shape: shape) : nil
    }

    /// Marks a stored tensor as deliberately unused (e.g. ChatGLM's output_layer).
    public func ignore(_ name: String) {
        if let s = storedName(name) { lock.lock(); used.insert(s); lock.unlock() }
    }

    /// Stored tensors no constructor asked for.
    public var unusedNames: [String] {
        lock.lock(); defer { lock.unlock() }
        return archive.names.filter { !used.contains($0) }
    }

    /// A view with a name prefix (`"down_blocks.0."`).
    public func scope(_ prefix: String) -> WeightScope { WeightScope(loader: self, prefix: prefix) }
}

/// A `WeightLoader` with a name prefix, so that model code reads like the diffusers tree.
public struct WeightScope: Sendable {
    public let loader: WeightLoader
    public let prefix: String

    public func scope(_ name: String) -> WeightScope { WeightScope(loader: loader, prefix: prefix + name + ".") }
    public func weight(_ name: String, shape: [Int]) throws -> Weight { try loader.weight(prefix + name, shape: shape) }
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor { try loader.tensor(prefix + name, shape: shape) }
    public func optionalTensor(_ name: String, shape: [Int]) throws -> Tensor? {
        try loader.optionalTensor(prefix + name, shape: shape)
    }
    public func contains(_ name: String) -> Bool { loader.contains(prefix + name) }
}
