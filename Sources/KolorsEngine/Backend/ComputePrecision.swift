/// The precision the engine computes in (`--precision`).
public enum ComputePrecision: String, CaseIterable, Sendable {
    /// float32 throughout: the parity path.
    case fp32
    /// bf16 operands, float32 sums (see `OneDNNBackend`).
    case bf16

    public var backend: ComputeBackend { self == .fp32 ? Backends.float32 : Backends.bfloat16 }

    /// bf16 where this CPU multiplies bf16 natively (oneDNN, self-checked), fp32 elsewhere:
    /// without bf16 instructions bf16 is only slower and less exact.
    public static var automatic: ComputePrecision { OneDNNCompute.bfloat16.isAvailable ? .bf16 : .fp32 }

    /// "fp32", "bf16" or "auto".
    public init?(argument: String) {
        if argument == "auto" { self = .automatic } else if let p = ComputePrecision(rawValue: argument) { self = p } else { return nil }
    }
}
