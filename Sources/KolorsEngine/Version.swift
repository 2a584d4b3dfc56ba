/// The project's version, shown by `kolors --version` and written into image metadata.
public enum KolorsVersion {
    public static let string = "0.1.0"
}
