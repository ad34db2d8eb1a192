import Foundation

/// The lab API server's audit log (`AUDIT_LOG` in the lab's cluster.env: metadata level, one JSON
/// event per line): the requests as the server saw them, whoever sent them. A tool's requests are
/// those with its user agent received while it ran.
struct AuditLog {
    struct Event: Decodable {
        struct ObjectRef: Decodable {
            let resource: String?
        }
        let auditID: String
        let stage: String
        let verb: String
        let requestURI: String
        let userAgent: String?
        let objectRef: ObjectRef?
        let requestReceivedTimestamp: String
    }

    /// Requests by kind. Watches are long-lived reads that the server pushes changes down;
    /// gets and lists are one answer each (a tool that polls repeats them).
    struct Counts {
        var total = 0, watches = 0, gets = 0, lists = 0, writes = 0, reviews = 0, other = 0

        init() {}

        init(_ events: [Event]) {
            for event in events {
                total += 1
                let resource = event.objectRef?.resource ?? ""
                switch event.verb {
                case "watch": watches += 1
                case "get" where !resource.isEmpty: gets += 1
                case "list": lists += 1
                case "create" where resource.hasPrefix("selfsubject"): reviews += 1
                case "create", "update", "patch", "delete", "deletecollection": writes += 1
                default: other += 1   // discovery, /version, /openapi
                }
            }
        }
    }

    /// Every request from the user agents asked for, once (a watch has two events,
    /// ResponseStarted and ResponseComplete).
    let events: [Event]

    /// Reads the requests whose user agent starts with one of `prefixes` (the other lines, most
    /// of the log, are the controllers' and the lab agent's, and are not decoded).
    init(path: String, userAgents prefixes: [String]) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let needles = prefixes.map { Data(#""userAgent":"\#($0)"#.utf8) }
        let decoder = JSONDecoder()
        var seen = Set<String>()
        var events: [Event] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where needles.contains(where: { line.range(of: $0) != nil }) {
            // Only the last line can fail to decode: the server may be appending it right now.
            guard let event = try? decoder.decode(Event.self, from: Data(line)) else { continue }
            if seen.insert(event.auditID).inserted { events.append(event) }
        }
        self.events = events
    }

    /// The requests received between `start` and `end` from a user agent starting with `prefix`.
    func requests(userAgentPrefix prefix: String, from start: Date, to end: Date) -> [Event] {
        let (low, high) = (Self.timestamp(start), Self.timestamp(end))
        return events.filter { event in
            (event.userAgent ?? "").hasPrefix(prefix) && event.requestReceivedTimestamp >= low && event.requestReceivedTimestamp <= high
        }
    }

    /// The audit log's own format ("2026-11-25T16:00:20.265793Z", UTC, always six fractional
    /// digits), so that timestamps compare as strings.
    static func timestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        let whole = floor(seconds)
        var time = time_t(whole)
        var parts = tm()
        gmtime_r(&time, &parts)
        let micros = min(999_999, Int(((seconds - whole) * 1_000_000).rounded(.down)))
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), micros)
    }
}
