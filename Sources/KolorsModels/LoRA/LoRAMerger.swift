import Foundation
import KolorsEngine

/// Fuses LoRAs into float32 copies of the layers they target, as diffusers' `fuse_lora` does:
/// W ← W + Σ weight·scale·(B·A) (Conv2d: B[:, :, 0, 0]·A reshaped to [r, in·kh·kw]). In float32
/// this equals PEFT's unfused W·x + Σ weight·scale·B(A·x) up to rounding. Only the targeted
/// layers are copied; the checkpoint and every other layer stay as they are (mapped).
public enum LoRAMerger {
    /// Merged weights by parameter name (`<module>.weight`), for `WeightLoader(overrides:)`.
    /// `loras` pairs each file with its total multiplier (adapter weight × call scale). Layers
    /// a LoRA names but the checkpoint lacks, or whose shapes disagree, are reported together.
    public static func mergedWeights(_ loras: [(file: LoRAFile, weight: Float)], into archive: SafetensorsArchive,
                                     component: String, backend: ComputeBackend) throws -> [String: Weight] {
        guard !loras.isEmpty else { return [:] }
        var merged: [String: Tensor] = [:]
        for (file, weight) in loras {
            var problems: [String] = []
            for m in file.modules {
                let name = m.path + ".weight"
                guard let info = archive.info(name) else {
                    problems.append("\(m.path): no such layer in the \(component)")
                    continue
                }
                let base = info.shape
                let down = m.down.shape, up = m.up.shape
                let fits = (base.count == 2 && down.count == 2 && up == [base[0], m.rank] && down == [m.rank, base[1]])
                    || (base.count == 4 && down.count == 4 && up == [base[0], m.rank, 1, 1]
                        && down == [m.rank, base[1], base[2], base[3]])
                guard fits else {
                    problems.append("\(m.path): the LoRA has down \(down) and up \(up), but the layer's weight is \(base)")
                    continue
                }
                if merged[name] == nil { merged[name] = try archive.mapped(name).toFloat32().copy() }
                guard weight != 0, m.scale != 0 else { continue }
                let a = try m.down.toFloat32().reshaped([m.rank, -1])
                let b = try m.up.toFloat32().reshaped([base[0], m.rank])
                let delta = backend.matmul(b, a, transposeB: false)
                axpy(weight * m.scale, delta, merged[name]!)
            }
            if !problems.isEmpty {
                throw LoRAError("LoRA \((file.path as NSString).lastPathComponent): \(problems.count) of its \(file.modules.count) layers do not fit this \(component): \(LoRAFile.list(problems))")
            }
        }
        return merged.mapValues { Weight($0) }
    }
}
