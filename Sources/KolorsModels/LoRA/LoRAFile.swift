import Foundation
import KolorsEngine

/// A UNet LoRA read as diffusers' `StableDiffusionLoraLoaderMixin.load_lora_weights` (the mixin
/// of `KolorsPipeline`) reads it, reduced to one (down, up, scale) triple per UNet layer.
///
/// Formats: diffusers/PEFT (`unet.<module>.lora_A/lora_B.weight`, optional
/// `lora_adapter_metadata` with r, lora_alpha, rank_pattern, alpha_pattern, use_rslora), old
/// diffusers (`unet.<module>.lora.down/up.weight` and processor keys
/// `…attn1.processor.to_q_lora.down.weight`, α = r), and kohya (`lora_unet_<module with _>` with
/// `lora_down`, `lora_up`, `.alpha`; names converted like diffusers' `_convert_unet_lora_key`).
/// Kohya files with SGM block names (`input_blocks_N_M`, `middle_block_N`, `output_blocks_N_M`)
/// are renumbered with the UNet config as diffusers' SDXL mixin does (the Kolors mixin does not
/// and fails on them).
///
/// α/r follows what diffusers ends up with, including one quirk: for kohya files whose alphas
/// differ between layers, the attention projections inside transformer blocks (attn1/attn2
/// to_q, to_k, to_v, to_out.0) get the file's most common alpha, not their own (their
/// alpha_pattern keys keep a `.processor.…_lora.down.weight` spelling that PEFT never matches).
public final class LoRAFile: @unchecked Sendable {
    public enum Format: String, Sendable {
        case peft = "diffusers/PEFT"
        case oldDiffusers = "old diffusers"
        case kohya = "kohya"
        case kohyaSGM = "kohya (SGM block names)"
    }

    /// One targeted UNet layer.
    public struct Module: Sendable {
        /// diffusers module path, e.g. `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`.
        public let path: String
        /// [r, in] (Linear) or [r, in, kh, kw] (Conv2d).
        public let down: MappedTensor
        /// [out, r] or [out, r, 1, 1].
        public let up: MappedTensor
        public let rank: Int
        /// The α the adapter uses (PEFT's lora_alpha for this layer).
        public let alpha: Float
        /// PEFT's `scaling`: α/r, or α/√r with use_rslora.
        public let scale: Float
    }

    public let path: String
    public let format: Format
    public let modules: [Module]
    /// Keys for other components (text encoders), which are not applied.
    public let ignoredKeys: [String]

    /// A short name for messages and metadata: the file name without `.safetensors`.
    public var name: String { ((path as NSString).lastPathComponent as NSString).deletingPathExtension }

    /// Reads `path`. `unetConfig` is needed only for SGM block names (layers_per_block).
    public init(path: String, unetConfig: UNet2DConditionConfig? = nil) throws {
        self.path = path
        let file = (path as NSString).lastPathComponent
        if Pickles.isPickle(path) { throw LoRAError(Pickles.refusal("LoRA \(file)", instead: "a .safetensors LoRA")) }
        let st: SafetensorsFile
        do { st = try SafetensorsFile(path: path) } catch let e as CheckpointError {
            throw LoRAError("LoRA \(file): \(e.message)")
        }
        let keys = st.names.sorted()
        guard !keys.isEmpty else { throw LoRAError("LoRA \(file) holds no tensors") }
        let keySet = Set(keys)  // lookups stay linear in the key count, whatever the file holds

        let kohyaPrefixes = ["lora_unet_", "lora_te_", "lora_te1_", "lora_te2_"]
        var parsed: [(path: String, down: String, up: String, alpha: Float?, processor: Bool)] = []
        var ignored: [String] = []
        var unknown: [String] = []
        var problems: [String] = []
        let format: Format

        if keys.allSatisfy({ k in kohyaPrefixes.contains { k.hasPrefix($0) } }) {
            var unetKeys = keys.filter { $0.hasPrefix("lora_unet_") }
            ignored = keys.filter { !$0.hasPrefix("lora_unet_") }
            let sgm = ["input_blocks", "middle_block", "output_blocks"], plain = ["down_blocks", "mid_block", "up_blocks"]
            let hasSGM = unetKeys.contains { k in sgm.contains { k.contains($0) } }
            let hasPlain = unetKeys.contains { k in plain.contains { k.contains($0) } }
            if hasSGM && hasPlain {
                ignored += unetKeys.filter { k in sgm.contains { k.contains($0) } }  // as diffusers: SGM keys dropped
                unetKeys.removeAll { k in sgm.contains { k.contains($0) } }
            }
            var rename: [String: String] = [:]
            if hasSGM && !hasPlain {
                guard let unetConfig else {
                    throw LoRAError("LoRA \(file) uses SGM block names (input_blocks …); the UNet config is needed to renumber them")
                }
                do {
                    rename = try Self.mapSGMBlocks(unetKeys, layersPerBlock: unetConfig.layersPerBlock.values(1).first ?? 2)
                } catch let e as LoRAError {
                    throw LoRAError("LoRA \(file): \(e.message)")
                }
                format = .kohyaSGM
            } else {
                format = .kohya
            }
            for key in unetKeys where key.hasSuffix(".lora_down.weight") {
                let loraName = String(key.dropLast(".lora_down.weight".count))
                let up = loraName + ".lora_up.weight", alphaKey = loraName + ".alpha"
                guard keySet.contains(up) else { problems.append("\(key) has no \(up)"); continue }
                let converted = Self.convertKohyaKey(rename[key] ?? key)
                guard let module = Self.moduleOfOldKey(converted) else { unknown.append(key); continue }
                var alpha: Float?
                if keySet.contains(alphaKey) {
                    let a = try st.mapped(alphaKey)
                    guard a.count == 1 else { problems.append("\(alphaKey) is not a scalar"); continue }
                    let value = try a.toFloat32().values[0]
                    guard Self.alphaRange.contains(value) else { problems.append("\(alphaKey) is \(value), not a number from 0 to \(Self.alphaRange.upperBound)"); continue }
                    alpha = value
                }
                parsed.append((module, key, up, alpha, converted.contains(".processor.")))
            }
            let consumed = Set(parsed.flatMap { [$0.down, $0.up, String($0.down.dropLast(".lora_down.weight".count)) + ".alpha"] })
            let reported = Set(unknown)
            unknown += unetKeys.filter { !consumed.contains($0) && !reported.contains($0) && !$0.hasSuffix(".lora_down.weight") }
        } else {
            let peft = keys.contains { $0.contains(".lora_A.") || $0.contains(".lora_B.") }
            format = peft ? .peft : .oldDiffusers
            for key in keys {
                if key.hasPrefix("text_encoder.") || key.hasPrefix("text_encoder_2.") { ignored.append(key); continue }
                let bare = key.hasPrefix("unet.") ? String(key.dropFirst(5)) : key
                if peft {
                    guard bare.hasSuffix(".lora_A.weight") else {
                        if !bare.hasSuffix(".lora_B.weight") { unknown.append(key) }
                        continue
                    }
                    let module = String(bare.dropLast(".lora_A.weight".count))
                    let up = String(key.dropLast(".lora_A.weight".count)) + ".lora_B.weight"
                    guard keySet.contains(up) else { problems.append("\(key) has no \(up)"); continue }
                    parsed.append((module, key, up, nil, false))
                } else {
                    guard bare.hasSuffix(".down.weight"), let module = Self.moduleOfOldKey(bare) else {
                        if !(bare.hasSuffix(".up.weight") && Self.moduleOfOldKey(bare.replacingOccurrences(of: ".up.weight", with: ".down.weight")) != nil) {
                            unknown.append(key)
                        }
                        continue
                    }
                    let up = String(key.dropLast(".down.weight".count)) + ".up.weight"
                    guard keySet.contains(up) else { problems.append("\(key) has no \(up)"); continue }
                    parsed.append((module, key, up, nil, false))
                }
            }
        }
        if !unknown.isEmpty {
            throw LoRAError("LoRA \(file) (\(format.rawValue)): \(unknown.count) keys are not LoRA weights this engine understands (DoRA, LoKr, biases and other adapters are not supported): \(Self.list(unknown))")
        }
        if !problems.isEmpty { throw LoRAError("LoRA \(file): \(Self.list(problems))") }
        guard !parsed.isEmpty else {
            throw LoRAError("LoRA \(file) has no UNet LoRA weights\(ignored.isEmpty ? "" : " (only \(ignored.count) text-encoder keys, which Kolors Studio does not apply)")")
        }
        var seen: Set<String> = []
        for p in parsed where !seen.insert(p.path).inserted {
            throw LoRAError("LoRA \(file): layer \(p.path) appears twice")
        }

        // --- ranks and alphas --------------------------------------------------------------
        let meta = try Self.adapterMetadata(st, file: file)
        let kohyaAlphas = parsed.compactMap(\.alpha)
        let commonAlpha = Self.mostCommon(kohyaAlphas)
        var modules: [Module] = []
        for p in parsed {
            let down = try st.mapped(p.down), up = try st.mapped(p.up)
            guard down.shape.count == up.shape.count, down.shape.count == 2 || down.shape.count == 4,
                  up.shape.count < 2 || up.shape[1] == down.shape[0],
                  down.shape.count == 2 || up.shape.suffix(2) == [1, 1] else {
                problems.append("\(p.path): down \(down.shape) and up \(up.shape) do not form a LoRA pair")
                continue
            }
            let rank = down.shape[0]
            guard (1...Self.maxRank).contains(rank) else {
                problems.append("\(p.path): rank \(rank) (down \(down.shape)) is not between 1 and \(Self.maxRank)")
                continue
            }
            var alpha = Float(rank)
            var scale: Float = 1
            switch format {
            case .peft:
                if let meta {
                    if let r = meta.rank(for: p.path), r != rank {
                        problems.append("\(p.path): lora_adapter_metadata says rank \(r), the weights have rank \(rank)")
                    }
                    alpha = meta.alpha(for: p.path)
                    scale = meta.useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
                }
            case .oldDiffusers:
                break
            case .kohya, .kohyaSGM:
                if let commonAlpha {
                    alpha = p.processor ? commonAlpha : (p.alpha ?? commonAlpha)
                    scale = alpha / Float(rank)
                }
            }
            modules.append(Module(path: p.path, down: down, up: up, rank: rank, alpha: alpha, scale: scale))
        }
        if !problems.isEmpty { throw LoRAError("LoRA \(file): \(Self.list(problems))") }
        self.format = format
        self.modules = modules.sorted { $0.path < $1.path }
        self.ignoredKeys = ignored
    }

    /// Largest LoRA rank accepted (published LoRAs use 4–256).
    public static let maxRank = 8192
    /// α values accepted (kohya `.alpha`, PEFT `lora_alpha` and `alpha_pattern`): α/r scales
    /// every update, so it must be a finite number of sensible size.
    static let alphaRange: ClosedRange<Float> = 0...65536

    static func list(_ items: [String], limit: Int = 6) -> String {
        items.prefix(limit).joined(separator: ", ") + (items.count > limit ? " … (\(items.count) in all)" : "")
    }

    /// Counter(values).most_common()[0] (ties: the first seen, in sorted key order).
    static func mostCommon(_ values: [Float]) -> Float? {
        var counts: [(Float, Int)] = []
        for v in values {
            if let i = counts.firstIndex(where: { $0.0 == v }) { counts[i].1 += 1 } else { counts.append((v, 1)) }
        }
        var best: (Float, Int)?
        for c in counts where best == nil || c.1 > best!.1 { best = c }
        return best?.0
    }

    /// The module path of an old-diffusers key (`….lora.down.weight`, processor `…to_q_lora.down.weight`),
    /// after diffusers' `.processor.` removal and `UNET_TO_DIFFUSERS` renames.
    public static func moduleOfOldKey(_ key: String) -> String? {
        var k = key.replacingOccurrences(of: ".processor.", with: ".")
        if k.hasPrefix("unet.") { k = String(k.dropFirst(5)) }
        for suffix in ["_lora.down.weight", "_lora.up.weight"] where k.hasSuffix(suffix) {
            let base = String(k.dropLast(suffix.count))  // …attn1.to_q / …attn1.to_out
            for proj in ["to_q", "to_k", "to_v"] where base.hasSuffix("." + proj) { return base }
            return base.hasSuffix(".to_out") ? base + ".0" : nil
        }
        for suffix in [".lora.down.weight", ".lora.up.weight"] where k.hasSuffix(suffix) {
            return String(k.dropLast(suffix.count))
        }
        return nil
    }

    /// diffusers' `_convert_unet_lora_key`: a kohya `lora_unet_…` key in the old diffusers spelling.
    public static func convertKohyaKey(_ key: String) -> String {
        var n = key.replacingOccurrences(of: "lora_unet_", with: "").replacingOccurrences(of: "_", with: ".")
        func r(_ a: String, _ b: String) { n = n.replacingOccurrences(of: a, with: b) }
        r("input.blocks.0.0", "conv_in"); r("out.2", "conv_out")
        r("input.blocks", "down_blocks"); r("down.blocks", "down_blocks")
        r("middle.block", "mid_block"); r("mid.block", "mid_block")
        r("output.blocks", "up_blocks"); r("up.blocks", "up_blocks")
        r("transformer.blocks", "transformer_blocks")
        r("to.q.lora", "to_q_lora"); r("to.k.lora", "to_k_lora"); r("to.v.lora", "to_v_lora"); r("to.out.0.lora", "to_out_lora")
        r("proj.in", "proj_in"); r("proj.out", "proj_out"); r("emb.layers", "time_emb_proj")
        r("conv.in", "conv_in"); r("conv.out", "conv_out")
        r("time.embed.0", "time_embedding.linear_1"); r("time.embed.2", "time_embedding.linear_2")
        r("label.emb.0.0", "add_embedding.linear_1"); r("label.emb.0.2", "add_embedding.linear_2")
        r("time.embedding.linear.1", "time_embedding.linear_1"); r("time.embedding.linear.2", "time_embedding.linear_2")
        if n.contains("emb") && !n.contains("time.emb.proj") {
            // re.sub(r"\.\d+(?=\D*$)", "", n, count=1): the last ".<digits>" followed by no digit
            let chars = Array(n)
            var i = chars.count - 1
            while i >= 0 && !chars[i].isNumber { i -= 1 }
            if i >= 0 {
                var j = i
                while j >= 0 && chars[j].isNumber { j -= 1 }
                if j >= 0 && chars[j] == "." { n = String(chars[..<j]) + String(chars[(i + 1)...]) }
            }
        }
        if n.contains(".in.") { r("in.layers.2", "conv1") }
        if n.contains(".out.") { r("out.layers.3", "conv2") }
        if n.contains("downsamplers") || n.contains("upsamplers") { r("op", "conv") }
        if n.contains("skip") { r("skip.connection", "conv_shortcut") }
        if n.contains("time.emb.proj") { r("time.emb.proj", "time_emb_proj") }
        if n.contains("conv.shortcut") { r("conv.shortcut", "conv_shortcut") }
        if n.contains("transformer_blocks") && (n.contains("attn1") || n.contains("attn2")) {
            r("attn1", "attn1.processor"); r("attn2", "attn2.processor")
        }
        return n
    }

    /// diffusers' `_maybe_map_sgm_blocks_to_diffusers` (delimiter "_", block_slice_pos 5):
    /// old key → renumbered key, for the SGM keys among `keys`.
    static func mapSGMBlocks(_ keys: [String], layersPerBlock: Int) throws -> [String: String] {
        var out: [String: String] = [:]
        let inner = ["resnets", "attentions", "upsamplers"]
        /// A block or layer number: digits only, at most `max` (no sign, so "-1" or Int.min
        /// cannot index backwards or overflow the arithmetic below).
        func number(_ s: String, max: Int) -> Int? {
            guard !s.isEmpty, s.utf8.count <= 6, s.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = Int(s), n <= max else { return nil }
            return n
        }
        for key in keys {
            if key.contains("text") || key.contains("input_blocks_0_0") { continue }
            let parts = key.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
            guard parts.count > 5, let id = number(parts[4], max: 1000) else { throw LoRAError("key \(key): cannot read its SGM block number") }
            if key.contains("input_blocks") {
                guard id >= 1, let innerId = number(parts[5], max: 1) ?? (key.contains("op") ? 0 : nil) else { throw LoRAError("key \(key): cannot read its SGM layer") }
                let block = (id - 1) / (layersPerBlock + 1), layer = (id - 1) % (layersPerBlock + 1)
                let op = key.contains("op")
                guard op || innerId < 2 else { throw LoRAError("key \(key): unknown SGM input layer \(innerId)") }
                out[key] = (parts[..<4] + [String(block), op ? "downsamplers" : inner[innerId], op ? "0" : String(layer)] + parts[6...]).joined(separator: "_")
            } else if key.contains("middle_block") {
                let part: [String]
                switch id {
                case 0: part = ["resnets", "0"]
                case 1: part = ["attentions", "0"]
                case 2: part = ["resnets", "1"]
                default: throw LoRAError("key \(key): invalid middle block id \(id)")
                }
                out[key] = (parts[..<4] + part + parts[5...]).joined(separator: "_")
            } else if key.contains("output_blocks") {
                guard let innerId = number(parts[5], max: 2) else { throw LoRAError("key \(key): cannot read its SGM layer") }
                let block = id / (layersPerBlock + 1), layer = id % (layersPerBlock + 1)
                out[key] = (parts[..<4] + [String(block), inner[innerId], innerId < 2 ? String(layer) : "0"] + parts[6...]).joined(separator: "_")
            }
        }
        return out
    }

    /// `lora_adapter_metadata` (LoraConfig kwargs saved by diffusers, keys prefixed `unet.`).
    struct AdapterMetadata {
        var r: Int?
        var alpha: Float?
        var rankPattern: [(String, Int)] = []
        var alphaPattern: [(String, Float)] = []
        var useRSLoRA = false

        /// PEFT's `get_pattern_key` — the first key k with re.match(rf"(.*\.)?({k})$", module) —
        /// with k taken literally: the module itself or a dotted suffix of it. The keys PEFT
        /// and diffusers write are module paths, which match the same either way; compiling
        /// keys from a file as regular expressions would let a hostile key backtrack for ever.
        static func match<T>(_ pattern: [(String, T)], _ module: String) -> T? {
            for (k, v) in pattern where module == k || module.hasSuffix("." + k) { return v }
            return nil
        }

        func rank(for module: String) -> Int? { Self.match(rankPattern, module) ?? r }
        func alpha(for module: String) -> Float {
            Self.match(alphaPattern, module) ?? alpha ?? 8  // LoraConfig's default lora_alpha
        }
    }

    static func adapterMetadata(_ st: SafetensorsFile, file: String) throws -> AdapterMetadata? {
        guard let raw = st.metadata["lora_adapter_metadata"] else { return nil }
        guard let json = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any] else {
            throw LoRAError("LoRA \(file): lora_adapter_metadata is not a JSON object")
        }
        guard json.keys.contains(where: { $0.hasPrefix("unet.") }) else { return nil }
        func num(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }
        // Numbers from the file become Int/Float only inside their ranges (Int(1e300) traps).
        func rank(_ v: Double, _ key: String) throws -> Int {
            guard let r = Int(whole: v, in: 1...maxRank) else {
                throw LoRAError("LoRA \(file): lora_adapter_metadata \(key) is \(v), not a rank from 1 to \(maxRank)")
            }
            return r
        }
        func alpha(_ v: Double, _ key: String) throws -> Float {
            guard v.isFinite, alphaRange.contains(Float(v)) else {
                throw LoRAError("LoRA \(file): lora_adapter_metadata \(key) is \(v), not a number from 0 to \(alphaRange.upperBound)")
            }
            return Float(v)
        }
        var m = AdapterMetadata()
        m.r = try num(json["unet.r"]).map { try rank($0, "unet.r") }
        m.alpha = try num(json["unet.lora_alpha"]).map { try alpha($0, "unet.lora_alpha") }
        if let p = json["unet.rank_pattern"] as? [String: Any] {
            m.rankPattern = try p.keys.sorted().compactMap { k in try num(p[k]).map { (k, try rank($0, "rank_pattern[\(k)]")) } }
        }
        if let p = json["unet.alpha_pattern"] as? [String: Any] {
            m.alphaPattern = try p.keys.sorted().compactMap { k in try num(p[k]).map { (k, try alpha($0, "alpha_pattern[\(k)]")) } }
        }
        m.useRSLoRA = (json["unet.use_rslora"] as? Bool) ?? false
        if (json["unet.use_dora"] as? Bool) == true {
            throw LoRAError("LoRA \(file) is a DoRA adapter (use_dora), which is not supported")
        }
        return m
    }
}
