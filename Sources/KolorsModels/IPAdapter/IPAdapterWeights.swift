import Foundation
import KolorsEngine

/// An IP-Adapter-Plus checkpoint as diffusers' `load_ip_adapter` reads it (Kolors'
/// `ip_adapter_plus_general.safetensors`): the resampler from the flattened `image_proj.*` keys
/// with the original IP-Adapter names (`layers.i.0.norm1` → `ln0`, `layers.i.0.to_kv` split in
/// halves → `attn.to_k` / `attn.to_v`, `layers.i.1.1` → `ff.1.net.0.proj` …; diffusers names are
/// accepted too), and one `to_k_ip` / `to_v_ip` pair per cross-attention layer from
/// `ip_adapter.<k>.*` (k = 1, 3, 5 …: odd indices of the UNet's attention processors, in
/// `UNet2DConditionModel.crossAttentionLayers` order). Weights stay memory-mapped.
public final class IPAdapterWeights: @unchecked Sendable {
    /// One cross-attention layer's image projections.
    public struct Layer: Sendable {
        /// The key index in the file ("1", "3", …).
        public let key: String
        public let toK: Linear
        public let toV: Linear
    }

    /// The safetensors file read.
    public let path: String
    public let projection: IPAdapterPlusImageProjection
    public let layers: [Layer]

    /// Largest size of any dimension that shapes the adapter (Kolors': 2048 wide, 16 queries).
    public static let maxDimension = 65536

    /// The file name Kolors' IP-Adapter-Plus uses (the diffusers docs load this one).
    public static let defaultFileName = "ip_adapter_plus_general.safetensors"

    /// Loads `path`: the safetensors file, or a folder holding `ip_adapter_plus_general.safetensors`.
    public static func load(_ path: String, residency: WeightResidency = .mapped,
                            backend: ComputeBackend = Backends.float32) throws -> IPAdapterWeights {
        try IPAdapterWeights(file: try resolve(path), residency: residency, backend: backend)
    }

    /// The safetensors file for a file or folder argument; PyTorch pickles are refused.
    public static func resolve(_ path: String) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            throw CheckpointError("IP-Adapter: \(path): no such file or folder")
        }
        let instead = "\(defaultFileName) (Kwai-Kolors/Kolors-IP-Adapter-Plus has it at revision refs/pr/4)"
        if !isDir.boolValue {
            if Pickles.isPickle(path) {
                throw CheckpointError(Pickles.refusal("IP-Adapter: \((path as NSString).lastPathComponent)", instead: instead))
            }
            return path
        }
        let preferred = path + "/" + defaultFileName
        if fm.fileExists(atPath: preferred) { return preferred }
        let files = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted()
        let candidates = files.filter { $0.hasSuffix(".safetensors") }.filter { name in
            (try? SafetensorsFile(path: path + "/" + name))?.names.contains { $0.hasPrefix("image_proj.") } == true
        }
        if candidates.count == 1 { return path + "/" + candidates[0] }
        if candidates.count > 1 {
            throw CheckpointError("IP-Adapter: \(path) holds several IP-Adapter files (\(candidates.joined(separator: ", "))); name one")
        }
        if let pickle = files.first(where: { $0.hasPrefix("ip_adapter") && Pickles.isPickle($0) }) {
            throw CheckpointError(Pickles.refusal("IP-Adapter: \(path)/\(pickle)", instead: instead))
        }
        throw CheckpointError("IP-Adapter: no \(defaultFileName) in \(path)")
    }

    /// Where the image encoder is by default: `image_encoder/` beside the weights file (the
    /// layout of Kwai-Kolors/Kolors-IP-Adapter-Plus).
    public static func defaultImageEncoderDirectory(for path: String) -> String {
        var isDir: ObjCBool = false
        let dir = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            ? path : (path as NSString).deletingLastPathComponent
        return (dir.isEmpty ? "." : dir) + "/image_encoder"
    }

    /// The original IP-Adapter Resampler name of a diffusers `IPAdapterPlusImageProjection` name.
    public static func originalName(_ name: String) -> String? {
        let p = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard p.count >= 4, p[0] == "layers" else { return nil }
        let i = p[1], rest = p[2...].joined(separator: ".")
        let table: [(String, String)] = [
            ("ln0.", "0.norm1."), ("ln1.", "0.norm2."), ("attn.to_q.", "0.to_q."), ("attn.to_out.0.", "0.to_out."),
            ("ff.0.", "1.0."), ("ff.1.net.0.proj.", "1.1."), ("ff.1.net.2.", "1.3."),
        ]
        for (from, to) in table where rest.hasPrefix(from) {
            return "layers.\(i).\(to)\(rest.dropFirst(from.count))"
        }
        return nil
    }

    init(file: String, residency: WeightResidency, backend: ComputeBackend) throws {
        path = file
        let archive = try SafetensorsArchive(paths: [file])
        let name = (file as NSString).lastPathComponent
        let names = archive.names
        guard names.contains(where: { $0.hasPrefix("image_proj.") }), names.contains(where: { $0.hasPrefix("ip_adapter.") }) else {
            throw CheckpointError("IP-Adapter: \(name) has no image_proj.* and ip_adapter.* tensors; is it an IP-Adapter-Plus file?")
        }
        func info(_ n: String) throws -> TensorInfo {
            guard let i = archive.info(n) else { throw CheckpointError("IP-Adapter: \(name) lacks \(n)") }
            return i
        }
        /// The shape of a tensor whose sizes set the architecture: the expected rank, every
        /// dimension from 1 to `maxDimension` (a declared [2^62, 0] holds no bytes but would
        /// overflow the arithmetic below).
        func dims(_ i: TensorInfo, rank: Int, _ layout: String) throws -> [Int] {
            guard i.shape.count == rank, i.shape.allSatisfy({ (1...Self.maxDimension).contains($0) }) else {
                throw CheckpointError("IP-Adapter: \(name): \(i.name) has shape \(i.shape), expected \(layout) with sizes from 1 to \(Self.maxDimension)")
            }
            return i.shape
        }

        // --- resampler hyper-parameters, as diffusers derives them ---------------------------
        let latents = try info("image_proj.latents")
        guard latents.shape.count == 3, latents.shape[0] == 1 else {
            throw CheckpointError("IP-Adapter: \(name): image_proj.latents has shape \(latents.shape), expected [1, queries, width]; only IP-Adapter-Plus (Resampler) files are supported")
        }
        let latentDims = try dims(latents, rank: 3, "[1, queries, width]")
        let (queries, hidden) = (latentDims[1], latentDims[2])
        let embed = try dims(try info("image_proj.proj_in.weight"), rank: 2, "[width, image features]")[1]
        let output = try dims(try info("image_proj.proj_out.weight"), rank: 2, "[token width, width]")[0]
        var depth = 0
        while depth < 256, names.contains(where: { $0.hasPrefix("image_proj.layers.\(depth).") }) { depth += 1 }
        guard depth > 0 else { throw CheckpointError("IP-Adapter: \(name) has no image_proj.layers.*") }
        let toQ = archive.info("image_proj.layers.0.0.to_q.weight") ?? archive.info("image_proj.layers.0.attn.to_q.weight")
        guard let toQ, toQ.shape.count == 2, toQ.shape[0] % IPAdapterPlusImageProjection.headDim == 0 else {
            throw CheckpointError("IP-Adapter: \(name): cannot find layers.0's to_q (rows a multiple of 64)")
        }
        let inner = try dims(toQ, rank: 2, "[heads × 64, width]")[0]
        let heads = inner / IPAdapterPlusImageProjection.headDim
        let ff = archive.info("image_proj.layers.0.1.1.weight") ?? archive.info("image_proj.layers.0.ff.1.net.0.proj.weight")
        guard let ff, ff.shape.count == 2 else { throw CheckpointError("IP-Adapter: \(name): cannot find layers.0's feed-forward") }
        let ffInner = try dims(ff, rank: 2, "[inner, width]")[0]

        // --- to_kv halves as mapped row ranges ------------------------------------------------
        var overrides: [String: Weight] = [:]
        for i in 0..<depth {
            let fused = "image_proj.layers.\(i).0.to_kv.weight"
            guard let kv = archive.info(fused) else { continue }
            guard kv.shape == [2 * inner, hidden] else {
                throw CheckpointError("IP-Adapter: \(name): \(fused) has shape \(kv.shape), expected [\(2 * inner), \(hidden)]")
            }
            let m = try archive.mapped(fused)
            for (half, rows) in [("to_k", 0..<inner), ("to_v", inner..<(2 * inner))] {
                let part = m.rows(rows)
                overrides["image_proj.layers.\(i).attn.\(half).weight"] = residency == .mapped ? Weight(mapped: part) : Weight(try part.toFloat32())
            }
        }
        let loader = WeightLoader(component: "ip_adapter", archive: archive, residency: residency, aliases: { n in
            guard n.hasPrefix("image_proj."), let o = IPAdapterWeights.originalName(String(n.dropFirst("image_proj.".count))) else { return [n] }
            return ["image_proj." + o, n]
        }, overrides: overrides)
        projection = try IPAdapterPlusImageProjection(loader.scope("image_proj."), embedDims: embed, hiddenDims: hidden,
                                                      outputDims: output, numQueries: queries, heads: heads, depth: depth,
                                                      ffInner: ffInner, backend: backend)
        for i in 0..<depth where archive.contains("image_proj.layers.\(i).0.to_kv.weight") {
            loader.ignore("image_proj.layers.\(i).0.to_kv.weight")
        }

        // --- per-layer image projections ---------------------------------------------------
        var keys: [Int] = []
        for n in names where n.hasPrefix("ip_adapter.") && n.hasSuffix(".to_k_ip.weight") {
            let mid = n.dropFirst("ip_adapter.".count).dropLast(".to_k_ip.weight".count)
            guard let k = Int(mid) else { throw CheckpointError("IP-Adapter: \(name): unexpected tensor \(n)") }
            keys.append(k)
        }
        keys.sort()
        guard !keys.isEmpty, keys == Array(stride(from: 1, to: 2 * keys.count, by: 2)) else {
            throw CheckpointError("IP-Adapter: \(name): ip_adapter.<k>.to_k_ip keys are \(keys.prefix(8).map(String.init).joined(separator: ", "))…, expected 1, 3, 5, …")
        }
        layers = try keys.map { k in
            let s = loader.scope("ip_adapter.\(k).")
            let kShape = try dims(try info("ip_adapter.\(k).to_k_ip.weight"), rank: 2, "[channels, cross-attention width]")
            let (c, cross) = (kShape[0], kShape[1])
            return Layer(key: String(k),
                         toK: try Linear(s.scope("to_k_ip"), in: cross, out: c, bias: false, backend: backend),
                         toV: try Linear(s.scope("to_v_ip"), in: cross, out: c, bias: false, backend: backend))
        }
        let unused = loader.unusedNames
        guard unused.isEmpty else {
            throw CheckpointError("IP-Adapter: \(name): \(unused.count) tensors were not understood: \(unused.prefix(5).joined(separator: ", "))\(unused.count > 5 ? " …" : "")")
        }
    }
}
