import Foundation

/// What the benchmarks' tables share: number formats, medians, aligned columns, and the summary
/// that `bench/run` prints after every case (one tab-separated line per measured figure, appended
/// to the file `BENCH_SUMMARY` names).
enum Report {
    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// 1.23 s, 45 ms, 4.5 ms.
    static func time(_ seconds: Double) -> String {
        if seconds.isNaN { return "-" }
        if seconds >= 1 { return String(format: "%.2f s", seconds) }
        if seconds >= 0.01 { return String(format: "%.0f ms", seconds * 1000) }
        return String(format: "%.1f ms", seconds * 1000)
    }

    static func mebibytes(kibibytes: Double) -> String { String(format: "%.1f MiB", kibibytes / 1024) }

    static func ratio(_ ours: Double, _ theirs: Double) -> String {
        theirs > 0 ? String(format: "%.2fx", ours / theirs) : "-"
    }

    static func count(_ value: Double) -> String {
        value.rounded() == value ? String(Int(value)) : String(format: "%.1f", value)
    }

    static func verdict(_ met: Bool) -> String { met ? "met" : "NOT met" }

    /// Rows with every column padded to its widest cell (the last column is not padded).
    static func table(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index] + 2, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n")
    }

    /// One line of the summary table: the case, both figures, the ratio, the target and whether
    /// it is met (empty when the figure has no target).
    static func summarize(_ name: String, repave: String, alternative: String, ratio: String = "", target: String = "", met: Bool? = nil) {
        guard let path = ProcessInfo.processInfo.environment["BENCH_SUMMARY"], !path.isEmpty else { return }
        let line = [name, repave, alternative, ratio, target, met.map(verdict) ?? ""].joined(separator: "\t") + "\n"
        guard let handle = FileHandle(forWritingAtPath: path) else {
            _ = FileManager.default.createFile(atPath: path, contents: Data(line.utf8))
            return
        }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data(line.utf8))
    }

    /// Progress of a long benchmark, on stderr (the tables go to stdout).
    static func note(_ text: String) {
        FileHandle.standardError.write(Data("  \(text)\n".utf8))
    }
}
