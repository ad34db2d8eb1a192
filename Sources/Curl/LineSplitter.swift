import Foundation

/// Reassembles newline-delimited records (watch events) from arbitrary chunks.
struct LineSplitter {
    private var pending = Data()
    /// A single line longer than this is a protocol error, not a reason to exhaust memory.
    let maxLineLength: Int

    init(maxLineLength: Int) {
        self.maxLineLength = maxLineLength
    }

    /// Appends a chunk; returns the complete lines it finished (without the newline), or nil when
    /// the pending line grew past `maxLineLength`.
    mutating func append(_ chunk: UnsafeRawBufferPointer) -> [Data]? {
        var lines: [Data] = []
        var start = 0
        for (index, byte) in chunk.enumerated() where byte == UInt8(ascii: "\n") {
            pending.append(contentsOf: chunk[start..<index])
            if !pending.isEmpty { lines.append(pending) }
            pending = Data()
            start = index + 1
        }
        pending.append(contentsOf: chunk[start...])
        return pending.count > maxLineLength ? nil : lines
    }

    /// The last line when the stream ended without a newline.
    mutating func finish() -> Data? {
        defer { pending = Data() }
        return pending.isEmpty ? nil : pending
    }
}
