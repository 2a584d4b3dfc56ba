import CSixel
#if canImport(Glibc)
import Glibc
#endif

public struct SixelError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Sixel graphics through libsixel: encoding RGB frames for the terminal and decoding them
/// back (the decoder is used by tests to prove what the terminal would receive).
public enum Sixel {
    /// How colours are chosen for a frame.
    public enum Palette: Sendable {
        /// A palette fitted to the image (median cut, up to `colors` entries): best quality.
        case adaptive(colors: Int)
        /// xterm's fixed 256-colour palette: no quantisation pass, fastest for per-step previews.
        case xterm256
    }

    /// Encodes an RGB888 buffer (`width*height*3` bytes) as a complete sixel sequence
    /// (DCS … ST).
    public static func encode(rgb: [UInt8], width: Int, height: Int, palette: Palette = .adaptive(colors: 256),
                              diffuse: Bool = true) throws -> [UInt8] {
        guard width > 0, height > 0, rgb.count == width * height * 3 else {
            throw SixelError(message: "sixel: \(rgb.count) bytes do not make a \(width)×\(height) RGB image")
        }
        final class Sink { var bytes: [UInt8] = [] }
        let sink = Sink()
        let box = Unmanaged.passRetained(sink)
        defer { box.release() }

        var output: OpaquePointer?
        let write: sixel_write_function = { data, size, priv in
            guard let data, let priv else { return 0 }
            let s = Unmanaged<Sink>.fromOpaque(priv).takeUnretainedValue()
            data.withMemoryRebound(to: UInt8.self, capacity: Int(size)) { p in
                s.bytes.append(contentsOf: UnsafeBufferPointer(start: p, count: Int(size)))
            }
            return size
        }
        var status = sixel_output_new(&output, write, box.toOpaque(), nil)
        guard status == SIXEL_OK, let output else { throw SixelError(message: "sixel_output_new failed (\(status))") }
        defer { sixel_output_unref(output) }

        var pixels = rgb
        let dither: OpaquePointer
        switch palette {
        case .xterm256:
            guard let d = sixel_dither_get(SIXEL_BUILTIN_XTERM256) else {
                throw SixelError(message: "libsixel has no built-in xterm palette")
            }
            dither = d
            sixel_dither_set_pixelformat(dither, SIXEL_PIXELFORMAT_RGB888)
        case .adaptive(let colors):
            var d: OpaquePointer?
            status = sixel_dither_new(&d, Int32(max(2, min(colors, 256))), nil)
            guard status == SIXEL_OK, let d else { throw SixelError(message: "sixel_dither_new failed (\(status))") }
            dither = d
            status = pixels.withUnsafeMutableBufferPointer { p in
                sixel_dither_initialize(dither, p.baseAddress, Int32(width), Int32(height),
                                        SIXEL_PIXELFORMAT_RGB888, SIXEL_LARGE_AUTO, SIXEL_REP_AUTO, SIXEL_QUALITY_AUTO)
            }
            guard status == SIXEL_OK else {
                sixel_dither_unref(dither)
                throw SixelError(message: "sixel_dither_initialize failed (\(status))")
            }
        }
        defer { sixel_dither_unref(dither) }
        if !diffuse { sixel_dither_set_diffusion_type(dither, SIXEL_DIFFUSE_NONE) }
        status = pixels.withUnsafeMutableBufferPointer { p in
            sixel_encode(p.baseAddress, Int32(width), Int32(height), 3, dither, output)
        }
        guard status == SIXEL_OK else { throw SixelError(message: "sixel_encode failed (\(status))") }
        return sink.bytes
    }

    /// Decodes a sixel sequence back to RGB888.
    public static func decode(_ data: [UInt8]) throws -> (rgb: [UInt8], width: Int, height: Int) {
        var allocator: OpaquePointer?
        guard sixel_allocator_new(&allocator, malloc, calloc, realloc, free) == SIXEL_OK, let allocator else {
            throw SixelError(message: "sixel_allocator_new failed")
        }
        defer { sixel_allocator_unref(allocator) }
        var input = data
        var indices: UnsafeMutablePointer<UInt8>?
        var palette: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0, ncolors: Int32 = 0
        let status = input.withUnsafeMutableBufferPointer { p in
            sixel_decode_raw(p.baseAddress, Int32(p.count), &indices, &w, &h, &palette, &ncolors, allocator)
        }
        defer {
            if let indices { sixel_allocator_free(allocator, indices) }
            if let palette { sixel_allocator_free(allocator, palette) }
        }
        guard status == SIXEL_OK, let indices, let palette, w > 0, h > 0 else {
            throw SixelError(message: "sixel_decode_raw failed (\(status))")
        }
        let n = Int(w) * Int(h)
        var rgb = [UInt8](repeating: 0, count: n * 3)
        for i in 0..<n {
            let c = min(Int(indices[i]), Int(max(ncolors, 1)) - 1)
            rgb[3 * i] = palette[3 * c]
            rgb[3 * i + 1] = palette[3 * c + 1]
            rgb[3 * i + 2] = palette[3 * c + 2]
        }
        return (rgb, Int(w), Int(h))
    }
}
