/// Something a run learns once and journals (a `fact` record), so that a resumed run knows it
/// without reading the cluster again: the claim's uid, the replicas a workload had. Each fact
/// names the type of its value. The journal keeps the value's text (schema 1's strings, so a
/// journal written before facts were typed reads the same).
public struct Fact<Value: FactValue>: Sendable {
    public let key: String

    public init(_ key: String) {
        self.key = key
    }
}

/// A value a ``Fact`` can hold: it has one text form in the journal, and reads back from it.
public protocol FactValue: Sendable {
    /// nil when the text is not a value of this type.
    init?(journaled: String)
    var journaled: String { get }
}

extension String: FactValue {
    public init?(journaled: String) { self = journaled }
    public var journaled: String { self }
}

extension Int: FactValue {
    public init?(journaled: String) { self.init(journaled) }
    public var journaled: String { String(self) }
}

/// The facts of a run, as its journal holds them (the last value of a key wins).
public struct Facts: Sendable, Equatable {
    var values: [String: String]

    public init(_ values: [String: String] = [:]) {
        self.values = values
    }

    /// The fact's value; nil when the run has not learnt it (or its text is not of its type).
    public subscript<Value>(_ fact: Fact<Value>) -> Value? {
        values[fact.key].flatMap(Value.init(journaled:))
    }

    mutating func set<Value>(_ fact: Fact<Value>, _ value: Value) {
        values[fact.key] = value.journaled
    }

    public var isEmpty: Bool { values.isEmpty }
}
