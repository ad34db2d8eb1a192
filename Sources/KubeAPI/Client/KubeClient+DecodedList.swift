import Foundation

extension KubeClient {
    /// One page of a LIST decoded into `Item`: only the fields `Item` names are kept.
    struct DecodedPage<Item: Decodable>: Decodable {
        struct ListMeta: Decodable {
            var resourceVersion: String?
            var `continue`: String?
        }
        var metadata: ListMeta?
        var items: [Item]?
    }

    /// LIST, following `continue` tokens, each page decoded straight into `Item`, a `Decodable`
    /// of the few fields the caller reads. Unlike ``list(_:in:labelSelector:fieldSelector:pageSize:)``
    /// no `JSON` tree of whole objects is built: for an audit of thousands of claims, decoding
    /// is most of the work, and what is never kept is never allocated.
    /// - Parameter body: called with each page's items as they arrive (nothing is accumulated here).
    public func forEachPage<Item: Decodable>(
        _ type: ResourceType, as _: Item.Type, in namespace: String? = nil, labelSelector: String? = nil, pageSize: Int = 500,
        _ body: ([Item]) throws -> Void
    ) async throws {
        var continueToken: String?
        repeat {
            var query: [(String, String)] = [("limit", String(pageSize))]
            if let labelSelector { query.append(("labelSelector", labelSelector)) }
            if let continueToken { query.append(("continue", continueToken)) }
            let response = try await send(Request(.get, type.path(namespace: namespace), query: query))
            let page: DecodedPage<Item>
            do {
                page = try JSONDecoder().decode(DecodedPage<Item>.self, from: response.body)
            } catch {
                throw KubeAPIError(reason: .unknown, httpStatus: response.status, verb: "decode", path: type.path(namespace: namespace),
                                   message: "the API server's list of \(type) does not decode: \(error)")
            }
            try body(page.items ?? [])
            continueToken = page.metadata?.continue.flatMap { $0.isEmpty ? nil : $0 }
        } while continueToken != nil
    }

    /// ``forEachPage(_:as:in:labelSelector:pageSize:_:)`` collected into one array.
    public func list<Item: Decodable>(
        _ type: ResourceType, as itemType: Item.Type, in namespace: String? = nil, labelSelector: String? = nil, pageSize: Int = 500
    ) async throws -> [Item] {
        var items: [Item] = []
        try await forEachPage(type, as: itemType, in: namespace, labelSelector: labelSelector, pageSize: pageSize) { items += $0 }
        return items
    }
}
