import Foundation
import KolorsEngine
import KolorsImageIO

/// Conversions between 8-bit images and the tensors diffusers' `VaeImageProcessor` makes.
public enum ImageConversion {
    /// PIL image → [1, 3, H, W] in [−1, 1]: resized (Lanczos) down to multiples of `multiple`
    /// first, then x/255 and 2x − 1 in float32, as `VaeImageProcessor.preprocess` does.
    public static func preprocess(_ image: RGBImage, multiple: Int = 8) throws -> Tensor {
        let w = image.width - image.width % multiple, h = image.height - image.height % multiple
        guard w > 0, h > 0 else {
            throw GenerationError("the input image is \(image.width)×\(image.height); it must be at least \(multiple)×\(multiple)")
        }
        let img = image.resized(width: w, height: h, filter: .lanczos)
        let t = Tensor(shape: [1, 3, h, w], zeroed: false)
        let plane = h * w
        for i in 0..<plane {
            for c in 0..<3 {
                let x = Float(img.pixels[i * 3 + c]) / 255
                t.pointer[c * plane + i] = 2 * x - 1
            }
        }
        return t
    }

    /// VAE output [B, 3, H, W] in [−1, 1] → floats in [0, 1] NHWC (`denormalize`: x·0.5 + 0.5,
    /// clamped) and 8-bit images (round half to even of x·255, as numpy does). ±∞ clamp like
    /// any value; NaN (an overflowing model) becomes 0 rather than trapping in the UInt8
    /// conversion, so a finished run still writes its image. `nonFinite` counts those values.
    public static func postprocess(_ decoded: Tensor) -> (pixels: Tensor, images: [RGBImage], nonFinite: Int) {
        let (b, c, h, w) = (decoded.shape[0], decoded.shape[1], decoded.shape[2], decoded.shape[3])
        precondition(c == 3, "postprocess wants RGB")
        let pixels = Tensor(shape: [b, h, w, 3], zeroed: false)
        var images: [RGBImage] = []
        var nonFinite = 0
        let plane = h * w
        for bi in 0..<b {
            var bytes = [UInt8](repeating: 0, count: plane * 3)
            for i in 0..<plane {
                for ch in 0..<3 {
                    let v = decoded.pointer[(bi * 3 + ch) * plane + i]
                    if !v.isFinite { nonFinite += 1 }
                    let x = v.isNaN ? 0 : min(max(v * 0.5 + 0.5, 0), 1)
                    pixels.pointer[(bi * plane + i) * 3 + ch] = x
                    bytes[i * 3 + ch] = UInt8((x * 255).rounded(.toNearestOrEven))
                }
            }
            images.append(RGBImage(width: w, height: h, pixels: bytes))
        }
        return (pixels, images, nonFinite)
    }
}
