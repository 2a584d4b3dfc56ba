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

extension ComputePrecision {
    /// How this precision computes on this machine, in one line: "fp32", "bf16 on oneDNN's bf16
    /// primitives", or — where oneDNN's bf16 does not run — "bf16 emulated on float32 BLAS,
    /// slower than fp32 (bf16 off: CPU lacks avx512_bf16/amx_bf16)".
    public var howItRuns: String {
        switch self {
        case .fp32: return "fp32"
        case .bf16:
            if let reason = OneDNNCompute.bfloat16.unavailableReason {
                return "bf16 emulated on float32 BLAS, slower than fp32 (\(reason))"
            }
            return "bf16 on oneDNN's bf16 primitives"
        }
    }

    /// What `auto` picks here and why: "bf16 on oneDNN's bf16 primitives" or "fp32 (bf16 off: …)".
    public static var automaticChoice: String {
        if let reason = OneDNNCompute.bfloat16.unavailableReason { return "fp32 (\(reason))" }
        return ComputePrecision.bf16.howItRuns
    }
}
