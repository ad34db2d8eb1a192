import CRepaveBuild
import RepaveCore

/// The version `repave --version` prints: the one scripts/package stamped in for the installed
/// binary and the Debian package (`0.1.0+git20261206.8963942`, or the tag), else
/// ``RepaveVersion/current`` for a plain `swift build`.
enum BuildVersion {
    static let full: String = {
        let stamped = String(cString: repave_build_version())
        return stamped.isEmpty ? RepaveVersion.current : stamped
    }()
}
