import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// DeepCache on the tiny checkpoint. Its shallow pass recomputes only conv_in, the first down
/// layer, the last up block's last layers and conv_out around the deep feature the full pass
/// kept — so at the very input and timestep of that full pass it must give the full output
/// again, and anywhere else something close to it but not equal.
@Suite("DeepCache")
struct DeepCacheTests {
    @Test("full pass = plain forward; shallow pass on the same input = full output; elsewhere an approximation")
    func shallowPassReproducesTheFullOne() throws {
        let refs = try Fixtures.References("unet.safetensors")
        let unet = try UNet2DConditionModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full)
        let branch = try #require(unet.deepCacheBranch)
        #expect(branch.keep == 1 && branch.start == unet.upBlocks.last!.resnetCount - 2)
        let (sample, states, text, ids) = (try refs["sample"], try refs["encoder_hidden_states"], try refs["text_embeds"], try refs["time_ids"])
        let conditioning = try unet.prepare(text: states, textEmbeds: text, timeIds: ids)
        func run(_ t: Float, _ x: Tensor, _ pass: DeepCache.Pass?) throws -> Tensor {
            try unet(x, timesteps: [t], conditioning: conditioning, deepCache: pass)
        }
        let cache = DeepCache(interval: 3)
        guard case .full = cache.pass(step: 1) else { Issue.record("no kept feature yet: the pass must be full"); return }
        let plain = try run(801, sample, nil)
        let full = try run(801, sample, cache.pass(step: 0))
        #expect(relativeError(full, plain) <= 1e-6, "recording the feature changed the output")
        guard case .shallow = cache.pass(step: 1), case .shallow = cache.pass(step: 2), case .full = cache.pass(step: 3) else {
            Issue.record("interval 3: steps 1 and 2 shallow, 3 full"); return
        }
        let again = try run(801, sample, cache.pass(step: 1))
        #expect(relativeError(again, full) <= 1e-6, "shallow pass at the full pass's own input: \(relativeError(again, full))")
        // a later step (other timestep, slightly moved latents): near the exact output, not equal
        let moved = sample.copy()
        for i in 0..<moved.count { moved.pointer[i] *= 0.98 }
        let exact = try run(760, moved, nil), approx = try run(760, moved, cache.pass(step: 2))
        let error = relativeError(approx, exact)
        print("DeepCache shallow pass on the tiny (random-weight) UNet: relative error \(error)")
        #expect(error > 1e-6 && error < 1, "shallow-pass error \(error)")
    }
}
