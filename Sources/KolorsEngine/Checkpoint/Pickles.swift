/// PyTorch pickles (`.bin`, `.pt`, `.pth`, `.ckpt` and sharded `.bin` indexes) are never loaded:
/// unpickling can run code. One test for them and one message, with what to use instead.
public enum Pickles {
    /// Whether a file name is a PyTorch pickle (or a sharded pickle's index).
    public static func isPickle(_ name: String) -> Bool {
        let n = name.lowercased()
        return [".bin", ".pt", ".pth", ".ckpt", ".bin.index.json"].contains { n.hasSuffix($0) }
    }

    /// "`what` is a PyTorch pickle, which Kolors Studio never loads (unpickling can run code); use `instead`".
    public static func refusal(_ what: String, instead: String) -> String {
        "\(what) is a PyTorch pickle, which Kolors Studio never loads (unpickling can run code); use \(instead)"
    }
}
