import KolorsEngine

/// transformers' `ACT2FN` entries CLIP checkpoints use (`hidden_act`).
public enum CLIPActivation: Sendable {
    /// x·σ(1.702·x), OpenAI CLIP's default.
    case quickGelu
    /// Exact erf GELU.
    case gelu
    /// tanh-approximated GELU.
    case geluTanh

    public init?(_ name: String) {
        switch name {
        case "quick_gelu": self = .quickGelu
        case "gelu": self = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
        default: return nil
        }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .quickGelu: KolorsEngine.quickGelu(x, inPlace: true)
        case .gelu: KolorsEngine.geluErf(x, inPlace: true)
        case .geluTanh: KolorsEngine.geluTanh(x, inPlace: true)
        }
    }
}
