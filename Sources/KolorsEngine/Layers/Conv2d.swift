/// `torch.nn.Conv2d` (groups 1, dilation 1), NCHW.
public final class Conv2d: @unchecked Sendable {
    public let weight: Weight
    public let bias: Tensor?
    public let stride: Int
    public let padding: Padding2D
    public let backend: ComputeBackend
    public var inChannels: Int { weight.shape[1] }
    public var outChannels: Int { weight.shape[0] }

    public init(weight: Weight, bias: Tensor?, stride: Int = 1, padding: Padding2D = .none,
                backend: ComputeBackend = Backends.float32) {
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.backend = backend
    }

    /// Loads `<scope>.weight` [out, in, k, k] (resident or mapped, as the loader says; a mapped
    /// kernel is converted when used) and `<scope>.bias` [out].
    public convenience init(_ w: WeightScope, in inChannels: Int, out outChannels: Int, kernel: Int,
                            stride: Int = 1, padding: Padding2D, bias: Bool = true,
                            backend: ComputeBackend = Backends.float32) throws {
        let weight = try w.weight("weight", shape: [outChannels, inChannels, kernel, kernel])
        let b = bias ? try w.tensor("bias", shape: [outChannels]) : nil
        self.init(weight: weight, bias: b, stride: stride, padding: padding, backend: backend)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        backend.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }

    /// This convolution applied to `x` upsampled 2× by nearest neighbour.
    public func upsampled2x(_ x: Tensor) -> Tensor {
        backend.conv2dUpsampled2x(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}
