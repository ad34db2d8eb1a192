import Curl
import Foundation
import KubeAPI
import Logging

/// A cache of one resource type kept current by list-then-watch (re-list on 410, reconnect on a
/// dropped stream). Every change rings `bell`, which wakes the agent's reconciler.
final class Informer: Sendable {
    let type: ResourceType
    private let client: KubeClient
    private let store: Store
    private let bell: @Sendable () -> Void
    private let logger: Logger

    actor Store {
        var objects: [String: JSON] = [:]
        var synced = false

        func replace(_ items: [JSON]) {
            objects = Dictionary(items.map { (Informer.key($0), $0) }, uniquingKeysWith: { _, last in last })
            synced = true
        }

        func put(_ object: JSON) { objects[Informer.key(object)] = object }
        func remove(_ object: JSON) { objects[Informer.key(object)] = nil }
    }

    init(_ type: ResourceType, client: KubeClient, logger: Logger, bell: @escaping @Sendable () -> Void) {
        self.type = type
        self.client = client
        self.store = Store()
        self.bell = bell
        self.logger = logger
    }

    static func key(_ object: JSON) -> String {
        let meta = ObjectMeta(object["metadata"] ?? [:])
        return (meta.namespace ?? "") + "/" + meta.name
    }

    var objects: [JSON] {
        get async { Array(await store.objects.values) }
    }

    var synced: Bool {
        get async { await store.synced }
    }

    func run() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let list = try await client.list(type)
                await store.replace(list.items)
                bell()
                var resourceVersion = list.resourceVersion
                failures = 0
                watching: while !Task.isCancelled {
                    do {
                        for try await event in client.watch(type, from: resourceVersion, timeoutSeconds: 240) {
                            switch event {
                            case .added(let object), .modified(let object):
                                await store.put(object)
                                resourceVersion = ObjectMeta(object["metadata"] ?? [:]).resourceVersion
                            case .deleted(let object):
                                await store.remove(object)
                                resourceVersion = ObjectMeta(object["metadata"] ?? [:]).resourceVersion
                            case .bookmark(let version):
                                if !version.isEmpty { resourceVersion = version }
                                continue
                            }
                            bell()
                        }
                    } catch let error as KubeAPIError where error.reason == .gone || error.reason == .expired {
                        break watching   // history expired: re-list
                    } catch let error as CurlError where error.kind != .cancelled {
                        logger.info("watch dropped; resuming", metadata: ["resource": "\(type)", "error": "\(error.message)"])
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                logger.warning("informer failed; retrying", metadata: ["resource": "\(type)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(min(5000, 200 * failures)))
            }
        }
    }
}
