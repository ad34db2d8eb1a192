/// The tool's version, reported by `repave --version`, sent in the `User-Agent`, and written into
/// every journal's first record.
public enum RepaveVersion {
    public static let current = "0.1.0"

    /// `repave/0.1.0`, the User-Agent prefix the API server's audit log groups requests by.
    public static var userAgent: String { "repave/\(current)" }
}
