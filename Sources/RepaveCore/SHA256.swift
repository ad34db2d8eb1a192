import CCrypto
import Foundation

/// SHA-256 through OpenSSL's libcrypto (no extra Swift package for one hash).
public enum SHA256 {
    public static func hex(of data: Data) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        data.withUnsafeBytes { bytes in
            _ = CCrypto.SHA256(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, &digest)
        }
        return digest.map { String(format: "%02x", $0) }.joined()
    }
}
