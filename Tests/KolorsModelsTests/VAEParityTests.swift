import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// The VAE against diffusers (Tests/Fixtures/references/vae.safetensors): posterior mean,
/// clamped log-variance and std from the encoder, and the decoded image; relative L2 ≤ 1e-4.
@Suite("AutoencoderKL parity")
struct VAEParityTests {
    static let tolerance = 1e-4

    @Test func encodeMatchesDiffusers() throws {
        let refs = try Fixtures.References("vae.safetensors")
        let vae = try AutoencoderKL.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full)
        #expect(vae.unusedWeights.isEmpty, "unused: \(vae.unusedWeights)")
        var seen: [String: Tensor] = [:]
        let post = try vae.encode(try refs["image"], probe: { seen[$0] = $1.copy() })
        for name in ["encoder.down_blocks.0", "encoder.down_blocks.1", "encoder.down_blocks.2", "encoder.down_blocks.3", "encoder.mid_block"] {
            let err = relativeError(try #require(seen[name]), try refs[name])
            #expect(err <= Self.tolerance, "\(name): \(err)")
        }
        #expect(relativeError(post.mean, try refs["mean"]) <= Self.tolerance)
        #expect(relativeError(post.logvar, try refs["logvar"]) <= Self.tolerance)
        #expect(relativeError(post.std, try refs["std"]) <= Self.tolerance)
    }

    @Test func decodeMatchesDiffusers() throws {
        let refs = try Fixtures.References("vae.safetensors")
        let vae = try AutoencoderKL.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full)
        var seen: [String: Tensor] = [:]
        let image = try vae.decode(try refs["latents"], probe: { seen[$0] = $1.copy() })
        for name in ["decoder.mid_block", "decoder.up_blocks.0", "decoder.up_blocks.1"] {
            let err = relativeError(try #require(seen[name]), try refs[name])
            #expect(err <= Self.tolerance, "\(name): \(err)")
        }
        #expect(relativeError(image, try refs["decoded"]) <= Self.tolerance)
    }

    @Test("the fp16 variant matches diffusers on the same weights")
    func fp16Variant() throws {
        let refs = try Fixtures.References("vae.safetensors")
        let vae = try AutoencoderKL.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .fp16)
        #expect(relativeError(try vae.decode(try refs["latents"]), try refs["decoded_from_fp16"]) <= Self.tolerance)
        #expect(relativeError(try vae.encode(try refs["image"]).mean, try refs["mean_from_fp16"]) <= Self.tolerance)
    }
}

@Suite("VAE tiled decode")
struct VAETilingTests {
    @Test("equals diffusers' tiled_decode (2×4 overlapping tiles, partial edge tiles)")
    func matchesDiffusers() throws {
        let refs = try Fixtures.References("vae_tiling.safetensors")
        let vae = try AutoencoderKL.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full, encoder: false)
        let tiled = try vae.tiledDecode(try refs["latents"], tileLatent: 4)
        let want = try refs["tiled_decoded"]
        #expect(tiled.shape == want.shape)
        #expect(relativeError(tiled, want) <= 1e-4, "relative error \(relativeError(tiled, want))")
        // One tile covering everything is the plain decode.
        let whole = try vae.tiledDecode(try refs["latents"], tileLatent: 16)
        #expect(relativeError(whole, try vae.decode(try refs["latents"])) <= 1e-6)
    }
}
