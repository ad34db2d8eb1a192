import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Testing

@testable import RepaveCore

/// The run's Lease on the lab's real API server.
@Suite("cluster lock", .serialized, .blockingCallsAllowed)
struct ClusterLockTests {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/lock")
    }

    @Test("create, renew by the same run, refuse another run naming the holder, release")
    func lifecycle() async throws {
        try await withTestNamespace(client, prefix: "lock") { ns in
            let mine = ClusterLock(client: client, namespace: ns, claim: "home", holder: "run-a")
            #expect(try await mine.acquire() == .created)
            let lease = Lease(try await client.get(.leases, named: "repave-home", in: ns))
            #expect(lease.holderIdentity == "run-a")
            #expect(lease.leaseDurationSeconds == 60)
            #expect(try await mine.acquire() == .renewed)      // a resume of the same run
            try await mine.renew()

            let theirs = ClusterLock(client: client, namespace: ns, claim: "home", holder: "run-b")
            let held = await #expect(throws: ClusterLock.Held.self) { try await theirs.acquire() }
            #expect(held?.holder == "run-a")
            #expect(held?.message == "another run holds the lock \(ns)/repave-home: run-a")
            await #expect(throws: ClusterLock.Held.self) { try await theirs.renew() }
            try await theirs.release()                           // not theirs: nothing happens
            #expect(try await client.getIfPresent(.leases, named: "repave-home", in: ns) != nil)

            try await mine.release()
            #expect(try await client.getIfPresent(.leases, named: "repave-home", in: ns) == nil)
        }
    }

    @Test("every renewal is journaled, intent before the update and result after; a lease taken by another run is journaled and reported lost")
    func renewalsJournaled() async throws {
        try await withTestNamespace(client, prefix: "lock") { ns in
            let scratch = try ScratchDirectory()
            let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: ["plan": "t"])
            let mine = ClusterLock(client: client, namespace: ns, claim: "home", holder: "run-a", duration: .seconds(3))
            #expect(try await mine.acquire() == .created)
            let loss = LockLoss()
            let renewal = mine.keepRenewed(journal: journal) { loss.set($0) }
            let lockRecords = { journal.records.filter { $0.kind == "lock" && $0.step == "lease-renewal" }.map { String(decoding: $0.data, as: UTF8.self) } }
            let twice = try await poll(attempts: 100, every: .milliseconds(100)) { lockRecords().filter { $0.contains(#""result":"renewed""#) }.count >= 2 }
            #expect(twice, "\(lockRecords())")

            // Another run takes the Lease (as after an expiry); the next renewal finds it. The
            // renewal (each second) may update it between this read and write: read again then.
            for attempt in 1...10 {
                var lease = try await client.get(.leases, named: "repave-home", in: ns)
                lease["spec"] = ["holderIdentity": "run-b", "leaseDurationSeconds": 60]
                do {
                    try await client.update(.leases, lease)
                    break
                } catch let error as KubeAPIError where error.reason == .conflict && attempt < 10 {}
            }
            await renewal.value
            #expect(loss.reason == "the cluster lock was taken by run-b")
            let records = lockRecords()
            // Pairs: each intent followed by its result, the last one the takeover.
            #expect(records.count % 2 == 0 && records.count >= 6, "\(records)")
            for (index, record) in records.enumerated() {
                #expect(record.contains(index % 2 == 0 ? #""intent":"renew""# : #""result":"#), "\(records)")
            }
            #expect(records.last?.contains(#""result":"taken by run-b""#) == true, "\(records)")
        }
    }

    @Test("an expired lease is taken over; a stale resourceVersion makes a concurrent takeover fail")
    func takeover() async throws {
        try await withTestNamespace(client, prefix: "lock") { ns in
            let old = ClusterLock(client: client, namespace: ns, claim: "home", holder: "crashed-run", duration: .seconds(1))
            #expect(try await old.acquire(now: Date().addingTimeInterval(-120)) == .created)
            let next = ClusterLock(client: client, namespace: ns, claim: "home", holder: "new-run")
            #expect(try await next.acquire() == .tookOver(previousHolder: "crashed-run"))
            #expect(Lease(try await client.get(.leases, named: "repave-home", in: ns)).holderIdentity == "new-run")

            // The crashed run comes back: the lease is no longer its own.
            await #expect(throws: ClusterLock.Held.self) { try await old.renew() }
            // A writer holding an old resourceVersion loses with a conflict.
            var stale = try await client.get(.leases, named: "repave-home", in: ns)
            try await next.renew()
            stale["spec"] = ["holderIdentity": "intruder"]
            let conflict = await #expect(throws: KubeAPIError.self) { try await client.update(.leases, stale) }
            #expect(conflict?.reason == .conflict)
        }
    }

    @Test("lease names and MicroTime")
    func names() throws {
        let long = String(repeating: "a", count: 250)
        let lock = ClusterLock(client: client, namespace: "ns", claim: long, holder: "r")
        #expect(lock.name.count == 253)
        #expect(ClusterLock.microTime(Date(timeIntervalSince1970: 1_795_831_200.25)) == "2026-11-28T02:00:00.250000Z")
        let parsed = try #require(ClusterLock.parse("2026-11-28T02:00:00.250000Z"))
        #expect(abs(parsed.timeIntervalSince1970 - 1_795_831_200) < 1)
        #expect(ClusterLock.parse("not a time") == nil)
    }
}
