import KolorsEngine

extension PrecisionOption {
    /// The `--precision` choice as it runs here, in one line, with the reason bf16 is off where it
    /// is: "auto → fp32 (bf16 off: CPU lacks avx512_bf16/amx_bf16)", "bf16 on oneDNN's bf16
    /// primitives". Printed by `info`, `bench`, `generate --verbose` and the studio's model line.
    var summary: String {
        switch self {
        case .auto: "auto → " + ComputePrecision.automaticChoice
        case .fp32, .bf16: resolved.howItRuns
        }
    }

    /// A warning when bf16 was asked for but runs emulated (slower than fp32), else nil.
    var warning: String? {
        guard self == .bf16, let reason = OneDNNCompute.bfloat16.unavailableReason else { return nil }
        return "--precision bf16 runs emulated on float32 BLAS here, slower than fp32 (\(reason))"
    }
}
