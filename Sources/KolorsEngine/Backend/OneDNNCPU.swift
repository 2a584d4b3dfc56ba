import CDNNL

/// A oneDNN CPU engine and stream, for the int8 and bf16 matrix products.
enum OneDNNCPU {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func makeEngineAndStream() throws -> (dnnl_engine_t, dnnl_stream_t) {
        var e: dnnl_engine_t?
        guard dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success, let e else {
            throw Failure(description: "oneDNN: no CPU engine")
        }
        var s: dnnl_stream_t?
        guard dnnl_stream_create(&s, e, UInt32(dnnl_stream_default_flags.rawValue)) == dnnl_success, let s else {
            throw Failure(description: "oneDNN: no stream")
        }
        return (e, s)
    }
}
