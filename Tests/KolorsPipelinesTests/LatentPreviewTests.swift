import KolorsImageIO
import KolorsPipelines
import Testing
import KolorsTestSupport

@Suite("Latent preview")
struct LatentPreviewTests {
    @Test("the SDXL linear map matches a hand computation and clamps")
    func linearMap() {
        // 1×2 latent: pixel 0 = (1, 0, 0, 0), pixel 1 = (10, 0, 0, 0) → clamped to white-ish
        let latent: [Float] = [1, 10, 0, 0, 0, 0, 0, 0]
        let img = LatentPreview.rgb(latent: latent, height: 1, width: 2)
        #expect(img.width == 2 && img.height == 1)
        func expected(_ x: Float) -> UInt8 { UInt8(((min(max(x, -1), 1) + 1) * 127.5).rounded()) }
        #expect(img[0, 0] == (expected(0.1084 + 0.3651), expected(-0.0175 + 0.4232), expected(-0.0011 + 0.4341)))
        #expect(img[1, 0] == (255, 255, 255))
        // all-zero latent gives the bias colour
        let zero = LatentPreview.rgb(latent: [Float](repeating: 0, count: 4 * 9), height: 3, width: 3)
        #expect(zero[2, 2] == (expected(0.1084), expected(-0.0175), expected(-0.0011)))
    }

    @Test("upscaling keeps flat colours and corners; shrinking averages")
    func resampling() {
        var px = [UInt8](repeating: 0, count: 2 * 2 * 3)
        px[0] = 255                                  // top-left red
        px[3 + 1] = 255                              // top-right green
        px[6 + 2] = 255                              // bottom-left blue
        px[9] = 255; px[10] = 255; px[11] = 255      // bottom-right white
        let img = RGBImage(width: 2, height: 2, pixels: px)
        let near = LatentPreview.resize(img, width: 8, height: 8, filter: .nearest)
        #expect(near[0, 0] == (255, 0, 0) && near[7, 0] == (0, 255, 0) && near[0, 7] == (0, 0, 255) && near[7, 7] == (255, 255, 255))
        let smooth = LatentPreview.resize(img, width: 8, height: 8)
        #expect(smooth[0, 0] == (255, 0, 0) && smooth[7, 7] == (255, 255, 255))
        let (r, g, _) = smooth[3, 0]
        #expect(r > 100 && g > 60, "blends between red and green in the middle")
        let flat = RGBImage(width: 64, height: 32, pixels: [UInt8](repeating: 77, count: 64 * 32 * 3))
        let small = LatentPreview.resize(flat, width: 7, height: 5)
        #expect(small.pixels.allSatisfy { $0 == 77 })
        let back = LatentPreview.resize(small, width: 50, height: 41)
        #expect(back.pixels.allSatisfy { $0 == 77 })
        // 2×2 → 1×1 averages
        let avg = LatentPreview.resize(img, width: 1, height: 1)
        #expect(avg[0, 0] == (128, 128, 128))
    }

    @Test("fit keeps the aspect ratio")
    func fit() {
        #expect(LatentPreview.fittedSize(width: 1024, height: 512, maxWidth: 300, maxHeight: 300) == (300, 150))
        #expect(LatentPreview.fittedSize(width: 832, height: 1216, maxWidth: 400, maxHeight: 300) == (205, 300))
        let img = LatentPreview.fit(RGBImage(width: 128, height: 96), maxWidth: 64, maxHeight: 64)
        #expect(img.width == 64 && img.height == 48)
    }
}
