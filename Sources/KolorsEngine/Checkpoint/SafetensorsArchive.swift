import Foundation

/// A component's weights: one safetensors file, or several shards tied together by an index
/// JSON (`{"weight_map": {tensor: file}}`). Every tensor name maps to exactly one file.
public final class SafetensorsArchive: @unchecked Sendable {
    public let files: [SafetensorsFile]
    private let owner: [String: SafetensorsFile]

    /// Opens one or more files; a tensor appearing in two files is an error.
    public init(paths: [String]) throws {
        precondition(!paths.isEmpty)
        var files: [SafetensorsFile] = []
        var owner: [String: SafetensorsFile] = [:]
        for p in paths {
            let f = try SafetensorsFile(path: p)
            for name in f.names {
                if let other = owner[name] {
                    throw CheckpointError("tensor '\(name)' appears in both \(other.path) and \(p)")
                }
                owner[name] = f
            }
            files.append(f)
        }
        self.files = files
        self.owner = owner
    }

    /// Opens the shards an index JSON names, and checks the index against the shards.
    public convenience init(index path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let data: Data
        do { data = try RegularFile.read(path) } catch {
            throw CheckpointError("cannot read the shard index \(error)")
        }
        let root: JSONValue
        do { root = try StrictJSONParser.parse([UInt8](data)) } catch {
            throw CheckpointError("\(path): shard index is not valid JSON (\(error))")
        }
        guard let map = root["weight_map"]?.objectValue else {
            throw CheckpointError("\(path): shard index has no weight_map")
        }
        var shardNames: [String] = []
        var expected: [(String, String)] = []
        for (tensor, file) in map {
            guard let f = file.stringValue, !f.contains("/"), !f.hasPrefix(".") else {
                throw CheckpointError("\(path): weight_map entry for '\(tensor)' is not a plain file name")
            }
            if !shardNames.contains(f) { shardNames.append(f) }
            expected.append((tensor, f))
        }
        guard !shardNames.isEmpty else { throw CheckpointError("\(path): shard index lists no tensors") }
        let shardPaths = shardNames.sorted().map { (dir as NSString).appendingPathComponent($0) }
        for p in shardPaths where !FileManager.default.fileExists(atPath: p) {
            throw CheckpointError("\(p): shard listed in \((path as NSString).lastPathComponent) is missing")
        }
        try self.init(paths: shardPaths)
        for (tensor, file) in expected {
            guard let f = owner[tensor] else {
                throw CheckpointError("\(path): tensor '\(tensor)' is listed in the index but missing from \(file)")
            }
            if (f.path as NSString).lastPathComponent != file {
                throw CheckpointError("\(path): tensor '\(tensor)' is listed in \(file) but found in \(f.path)")
            }
        }
    }

    public var names: [String] { files.flatMap(\.names) }

    public func contains(_ name: String) -> Bool { owner[name] != nil }

    public func info(_ name: String) -> TensorInfo? { owner[name]?.info(name) }

    /// The file holding `name`.
    public func file(of name: String) -> SafetensorsFile? { owner[name] }

    public func mapped(_ name: String) throws -> MappedTensor {
        guard let f = owner[name] else { throw CheckpointError("no tensor '\(name)'") }
        return try f.mapped(name)
    }

    /// Total bytes of tensor data.
    public var dataBytes: Int { files.reduce(0) { $0 + $1.tensors.values.reduce(0) { $0 + $1.range.count } } }

    /// Bytes on disk.
    public var fileBytes: Int { files.reduce(0) { $0 + $1.fileSize } }
}
