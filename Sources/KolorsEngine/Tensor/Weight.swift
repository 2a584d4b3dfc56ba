import Foundation
import CKolorsKernels

/// A parameter tensor as the model holds it: either resident float32, or left in the
/// memory-mapped checkpoint in its stored dtype (fp16/bf16/fp32) and converted piecewise when
/// used, so a 6B-parameter text encoder never needs a float32 copy of itself.
public final class Weight: @unchecked Sendable {
    public enum Storage {
        case float32(Tensor)
        case mapped(MappedTensor)
        /// int8 with per-row scales (weight-only quantization).
        case int8(Int8Matrix)
    }

    public let shape: [Int]
    public let storage: Storage
    /// The model runs this weight once per run (the text encoder: once per prompt), so a backend
    /// converts it block by block each time instead of keeping a prepared copy (`WeightPolicy`).
    public let usedOncePerRun: Bool
    /// Forms a backend made of this weight once and keeps for the model's lifetime (e.g.
    /// oneDNN's bf16 copy in its blocked layout), by the backend's key.
    private var forms: [String: WeightForm] = [:]
    private let formsLock = NSLock()

    public init(_ tensor: Tensor, usedOncePerRun: Bool = false) {
        shape = tensor.shape
        storage = .float32(tensor)
        self.usedOncePerRun = usedOncePerRun
    }

    public init(mapped: MappedTensor, usedOncePerRun: Bool = false) {
        shape = mapped.shape
        storage = .mapped(mapped)
        self.usedOncePerRun = usedOncePerRun
    }

    public init(int8: Int8Matrix, usedOncePerRun: Bool = false) {
        shape = [int8.rows, int8.cols]
        storage = .int8(int8)
        self.usedOncePerRun = usedOncePerRun
    }

    /// This weight quantized to int8 with per-row scales.
    public func quantizedInt8() -> Weight { Weight(int8: Int8Matrix(quantizing: self), usedOncePerRun: usedOncePerRun) }

    public var count: Int { shape.reduce(1, *) }

    /// Whether the weight is stored as int8.
    public var isInt8: Bool {
        if case .int8 = storage { return true }
        return false
    }

    /// The resident float32 tensor, if this weight is resident.
    public var residentFloat32: Tensor? {
        if case .float32(let t) = storage { return t }
        return nil
    }

    /// Float32 values: the resident tensor itself, or a fresh converted copy. (A mapped weight's
    /// dtype was checked to be a float type when it was loaded, so converting cannot fail.)
    public func float32() -> Tensor {
        if case .float32(let t) = storage { return t }
        let t = Tensor(shape: shape, zeroed: false)
        convertRows(0..<shape[0], into: t.pointer)
        return t
    }

    /// Converts rows `rows` of the leading dimension into `dst` (row-major, float32).
    public func convertRows(_ rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let inner = shape.dropFirst().reduce(1, *)
        switch storage {
        case .float32(let t):
            dst.update(from: t.pointer + rows.lowerBound * inner, count: rows.count * inner)
        case .mapped(let m):
            m.convert(elements: rows.lowerBound * inner, count: rows.count * inner, into: dst)
        case .int8(let q):
            q.dequantizeRows(rows, into: dst)
        }
    }

    /// Rows `rows` as bf16 bits (round to nearest even) into `dst`: fp16 and bf16 storage in one
    /// pass, anything else through `scratch` (float32, room for the rows).
    public func convertRowsToBF16(_ rows: Range<Int>, into dst: UnsafeMutablePointer<UInt16>, scratch: UnsafeMutablePointer<Float>) {
        let inner = shape.dropFirst().reduce(1, *)
        if case .mapped(let m) = storage, m.dtype == .f16 || m.dtype == .bf16 {
            let src = (m.data + rows.lowerBound * inner * 2).assumingMemoryBound(to: UInt16.self)
            if m.dtype == .f16 { kk_f16_to_bf16(src, dst, rows.count * inner) } else { dst.update(from: src, count: rows.count * inner) }
            return
        }
        convertRows(rows, into: scratch)
        kk_f32_to_bf16(scratch, dst, rows.count * inner)
    }

    /// The form of this weight kept under `key`, made by `make` at the first request.
    public func prepared(_ key: String, _ make: () throws -> WeightForm) rethrows -> WeightForm {
        formsLock.lock(); defer { formsLock.unlock() }
        if let form = forms[key] { return form }
        let form = try make()
        forms[key] = form
        return form
    }

    /// Bytes held by the prepared forms of this weight.
    public var preparedBytes: Int {
        formsLock.lock(); defer { formsLock.unlock() }
        return forms.values.reduce(0) { $0 + $1.bytes }
    }

    /// Drops a mapped weight's pages from this process (see `MappedTensor.releasePages`) and
    /// any prepared forms (a weight used once per run, like the text encoder's, gains nothing
    /// from keeping them).
    public func releasePages() {
        formsLock.lock(); forms.removeAll(); formsLock.unlock()
        releaseSourcePages()
    }

    /// Drops only the mapped (or int8-cache) pages, keeping prepared forms.
    public func releaseSourcePages() {
        switch storage {
        case .mapped(let m): m.releasePages()
        case .int8(let q): q.releasePages()
        case .float32: break
        }
    }

    /// Bytes this weight keeps in process memory, prepared forms included (mapped weights
    /// count as 0: the page cache holds them and the kernel may drop them).
    public var residentBytes: Int {
        switch storage {
        case .float32(let t): return t.count * 4 + preparedBytes
        case .int8(let q): return q.bytes + preparedBytes
        case .mapped: return preparedBytes
        }
    }
}

/// A backend's own copy of a weight (converted, re-laid-out), kept on the `Weight`.
public protocol WeightForm: AnyObject {
    var bytes: Int { get }
}
