import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

@testable import RepaveCore

/// The run's Lease on the lab's real API server.
@Suite("cluster lock", .serialized)
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
