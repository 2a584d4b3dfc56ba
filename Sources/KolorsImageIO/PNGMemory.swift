import CLibPNG

/// PNG images in memory (libpng's simplified API): the iTerm2 inline-image protocol sends a PNG
/// file, and tests decode such payloads back.
extension PNGFile {
    /// The PNG encoding of `image` (8-bit RGB, no text chunks).
    public static func encode(_ image: RGBImage) throws -> [UInt8] {
        guard image.width > 0, image.height > 0, image.pixels.count == image.width * image.height * 3 else {
            throw PNGError(path: "<memory>", message: "\(image.pixels.count) bytes do not make a \(image.width)×\(image.height) RGB image")
        }
        var png = png_image()
        png.version = png_uint_32(PNG_IMAGE_VERSION)
        png.width = png_uint_32(image.width)
        png.height = png_uint_32(image.height)
        png.format = png_uint_32(PNG_FORMAT_RGB)
        // a first call measures, the second writes
        var size: png_alloc_size_t = 0
        let stride = Int32(image.width * 3)
        let measured = image.pixels.withUnsafeBufferPointer { px in
            png_image_write_to_memory(&png, nil, &size, 0, px.baseAddress, stride, nil)
        }
        guard measured != 0, size > 0 else {
            throw PNGError(path: "<memory>", message: "png_image_write_to_memory failed: \(libpngMessage(png))")
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        let written = image.pixels.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBytes { dst in
                png_image_write_to_memory(&png, dst.baseAddress, &size, 0, px.baseAddress, stride, nil)
            }
        }
        guard written != 0 else { throw PNGError(path: "<memory>", message: "png_image_write_to_memory failed: \(libpngMessage(png))") }
        out.removeSubrange(Int(size)...)
        return out
    }

    /// Decodes PNG bytes to 8-bit RGB.
    public static func decode(_ bytes: [UInt8], maxPixels: Int = 1 << 28) throws -> RGBImage {
        var png = png_image()
        png.version = png_uint_32(PNG_IMAGE_VERSION)
        let begun = bytes.withUnsafeBytes { raw in png_image_begin_read_from_memory(&png, raw.baseAddress, raw.count) }
        guard begun != 0 else { throw PNGError(path: "<memory>", message: "not a PNG: \(libpngMessage(png))") }
        defer { png_image_free(&png) }
        guard Int(png.width) * Int(png.height) <= maxPixels else {
            throw PNGError(path: "<memory>", message: "\(png.width)×\(png.height) is too large")
        }
        png.format = png_uint_32(PNG_FORMAT_RGB)
        var pixels = [UInt8](repeating: 0, count: Int(png.width) * Int(png.height) * 3)
        let done = pixels.withUnsafeMutableBytes { dst in
            png_image_finish_read(&png, nil, dst.baseAddress, Int32(png.width * 3), nil)
        }
        guard done != 0 else { throw PNGError(path: "<memory>", message: "png decode failed: \(libpngMessage(png))") }
        return RGBImage(width: Int(png.width), height: Int(png.height), pixels: pixels)
    }

    private static func libpngMessage(_ png: png_image) -> String {
        var m = png.message
        return withUnsafeBytes(of: &m) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
