import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// EXPERIMENTAL W8A8 UNet (int8 transformer weights × 7-bit activations on oneDNN): the error it
/// costs against float32 on the tiny checkpoint (its quality on a trained model is reported in
/// BENCHMARKS.md).
@Suite("UNet int8-w8a8 (experimental)", .enabled(if: W8A8Backend.isAvailable))
struct UNetW8A8Tests {
    @Test("transformer linear layers in int8 run on oneDNN; the prediction stays near float32")
    func nearFloat32() throws {
        let refs = try Fixtures.References("unet.safetensors")
        let unet = try UNet2DConditionModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full, w8a8: true)
        let q = unet.downBlocks[1].attentions[0].blocks[0].attn2.toQ.weight
        #expect(q.isInt8, "transformer linear weights are quantized")
        let out = try unet(try refs["sample"], timesteps: [801], encoderHiddenStates: try refs["encoder_hidden_states"],
                           textEmbeds: try refs["text_embeds"], timeIds: try refs["time_ids"])
        let e = relativeError(out, try refs["t801.out"])
        print("UNet int8-w8a8 on the tiny model: relative error \(e) vs float32")
        #expect(e > 1e-5 && e < 0.1, "w8a8 error \(e)")
    }
}
