import Foundation
import KolorsEngine
import KolorsImageIO

/// Mirrors transformers' `CLIPImageProcessor` on its PIL path (`CLIPImageProcessorPil`, what
/// transformers 5 uses without torchvision): resize so the shortest edge is `size` (long side
/// int(size·long/short)) with Pillow's antialiased resampling, centre crop, ×1/255 (in double,
/// then float32), (x − mean)/std in float32, CHW.
public struct CLIPImageProcessor: Sendable, Equatable {
    public var doResize = true
    /// Target of the shortest edge (transformers' `size["shortest_edge"]`), or an exact size.
    public var size: Size = .shortestEdge(224)
    public var resample: PillowResample = .bicubic
    public var doCenterCrop = true
    public var cropHeight = 224
    public var cropWidth = 224
    public var doRescale = true
    public var rescaleFactor = 1.0 / 255.0
    public var doNormalize = true
    public var mean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public var std: [Float] = [0.26862954, 0.26130258, 0.27577711]
    /// What `forEncoder` noticed while reading `preprocessor_config.json`.
    public var notes: [String] = []

    public enum Size: Sendable, Equatable {
        case shortestEdge(Int)
        case exact(height: Int, width: Int)
    }

    public init() {}

    /// What diffusers' `load_ip_adapter` builds when the pipeline has no feature extractor:
    /// `CLIPImageProcessor(size=image_size, crop_size=image_size)`.
    public init(imageSize: Int) {
        size = .shortestEdge(imageSize)
        cropHeight = imageSize
        cropWidth = imageSize
    }

    /// The processor for an image encoder folder: `preprocessor_config.json` when present,
    /// otherwise diffusers' default for the encoder's `image_size`. A config whose output size
    /// does not fit the encoder is not used for the sizes (diffusers never reads the file; the
    /// encoder's position embeddings fix the size); `notes` says so.
    public static func forEncoder(directory: String, imageSize: Int) throws -> CLIPImageProcessor {
        var p = CLIPImageProcessor(imageSize: imageSize)
        let path = directory + "/preprocessor_config.json"
        guard FileManager.default.fileExists(atPath: path) else { return p }
        let data: Data
        do { data = try RegularFile.read(path) } catch { throw CheckpointError("\(error)") }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CheckpointError("\(path): not a JSON object")
        }
        var read = CLIPImageProcessor()
        func num(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }
        /// A size in pixels: a whole number up to the image limit (Int(1e300) would trap).
        func pixels(_ v: Double, _ key: String) throws -> Int {
            guard let n = Int(whole: v, in: 1...4096) else {
                throw CheckpointError("\(path): \(key) must be a whole number of pixels from 1 to 4096 (got \(v))")
            }
            return n
        }
        func bool(_ key: String, _ d: Bool) -> Bool { (json[key] as? Bool) ?? d }
        read.doResize = bool("do_resize", true)
        read.doCenterCrop = bool("do_center_crop", true)
        read.doRescale = bool("do_rescale", true)
        read.doNormalize = bool("do_normalize", true)
        if let r = num(json["rescale_factor"]) { read.rescaleFactor = r }
        if let m = json["image_mean"] as? [Any], m.count == 3 { read.mean = m.compactMap { num($0).map(Float.init) } }
        if let s = json["image_std"] as? [Any], s.count == 3 { read.std = s.compactMap { num($0).map(Float.init) } }
        if let r = num(json["resample"]) {
            switch Int(whole: r, in: 0...99) {
            case 1: read.resample = .lanczos
            case 2: read.resample = .bilinear
            case 3: read.resample = .bicubic
            default: throw CheckpointError("\(path): resample \(r) is not supported (1 lanczos, 2 bilinear, 3 bicubic)")
            }
        }
        switch json["size"] {
        case let n as NSNumber: read.size = .shortestEdge(try pixels(n.doubleValue, "size"))
        case let d as [String: Any]:
            if let s = num(d["shortest_edge"]) { read.size = .shortestEdge(try pixels(s, "size.shortest_edge")) }
            else if let h = num(d["height"]), let w = num(d["width"]) {
                read.size = .exact(height: try pixels(h, "size.height"), width: try pixels(w, "size.width"))
            }
        default: read.size = .shortestEdge(imageSize)
        }
        switch json["crop_size"] {
        case let n as NSNumber: (read.cropHeight, read.cropWidth) = (try pixels(n.doubleValue, "crop_size"), try pixels(n.doubleValue, "crop_size"))
        case let d as [String: Any]:
            if let h = num(d["height"]), let w = num(d["width"]) {
                (read.cropHeight, read.cropWidth) = (try pixels(h, "crop_size.height"), try pixels(w, "crop_size.width"))
            }
        default: (read.cropHeight, read.cropWidth) = (imageSize, imageSize)
        }
        guard read.mean.count == 3, read.std.count == 3, read.std.allSatisfy({ $0.isFinite && $0 != 0 }),
              read.mean.allSatisfy(\.isFinite), read.rescaleFactor.isFinite else {
            throw CheckpointError("\(path): image_mean and image_std need three finite numbers (std not 0), rescale_factor a finite one")
        }
        let out = read.outputSize
        if out.height == imageSize && out.width == imageSize {
            read.notes = []
            return read
        }
        p.notes = ["\(path) gives \(out.width)×\(out.height) images but the encoder takes \(imageSize)×\(imageSize); using diffusers' CLIPImageProcessor(size=\(imageSize), crop_size=\(imageSize)) instead"]
        return p
    }

    /// Width and height of what `callAsFunction` returns, when that does not depend on the input.
    var outputSize: (height: Int, width: Int) {
        if doCenterCrop { return (cropHeight, cropWidth) }
        if case .exact(let h, let w) = size { return (h, w) }
        return (-1, -1)
    }

    /// transformers' `get_resize_output_image_size(size=shortest_edge, default_to_square=False)`.
    public func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        switch size {
        case .exact(let h, let w): return (w, h)
        case .shortestEdge(let s):
            let short = min(width, height), long = max(width, height)
            let newLong = Int(Double(s) * Double(long) / Double(short))
            return width <= height ? (s, newLong) : (newLong, s)
        }
    }

    /// `pixel_values` [1, 3, H, W] for one RGB image.
    public func callAsFunction(_ image: RGBImage) throws -> Tensor {
        guard image.width > 0, image.height > 0 else { throw CheckpointError("CLIP image processor: empty image") }
        var img = image
        if doResize {
            let (w, h) = resizedSize(width: img.width, height: img.height)
            // The shortest edge goes to the encoder's size: a very elongated image would become
            // an enormous intermediate (4096×1 → 917504×224) of which the crop keeps a sliver.
            guard w <= 8192, h <= 8192 else {
                throw CheckpointError("CLIP image processor: a \(image.width)×\(image.height) image is too elongated (it would be resized to \(w)×\(h)); crop it first")
            }
            img = img.resized(width: w, height: h, filter: resample)
        }
        var top = 0, left = 0, outH = img.height, outW = img.width
        if doCenterCrop {
            guard cropHeight <= img.height, cropWidth <= img.width else {
                throw CheckpointError("CLIP image processor: a \(cropWidth)×\(cropHeight) crop does not fit the resized \(img.width)×\(img.height) image")
            }
            top = (img.height - cropHeight) / 2
            left = (img.width - cropWidth) / 2
            outH = cropHeight
            outW = cropWidth
        }
        let t = Tensor(shape: [1, 3, outH, outW], zeroed: false)
        let plane = outH * outW
        for y in 0..<outH {
            for x in 0..<outW {
                let src = ((y + top) * img.width + (x + left)) * 3
                for c in 0..<3 {
                    var v = Float(img.pixels[src + c])
                    if doRescale { v = Float(Double(img.pixels[src + c]) * rescaleFactor) }
                    if doNormalize { v = (v - mean[c]) / std[c] }
                    t.pointer[c * plane + y * outW + x] = v
                }
            }
        }
        return t
    }
}
