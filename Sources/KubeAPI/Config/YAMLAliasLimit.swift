/// A bound on YAML aliases, checked on the text before Yams composes it.
///
/// Yams shares an aliased node instead of copying it, so aliases in values cost nothing; but it
/// checks every mapping for duplicate keys by hashing the keys, and hashing a key that is an
/// alias of nested aliases walks the whole expansion: 650 bytes of `? *a11` over eleven levels
/// of nine-fold aliases make it hash 9^11 nodes, a hang (fuzz/corpus/plan/alias-key-bomb.yaml).
/// With at most `maximum` aliases no expansion exceeds about 3^(maximum/3) nodes, milliseconds.
///
/// The count is exact in what it never misses: libyaml starts an alias only at a `*` that begins
/// a token, and the byte before such a `*` is whitespace, a line break (also the non-ASCII
/// ones), a flow indicator, `?` or `:`; any other byte there makes the `*` part of a scalar,
/// tag or anchor, or a scan error. (After an opening quote it is inside a quoted scalar — a glob
/// such as `"**/node_modules/**"` — and right after a closing one libyaml stops with a scan
/// error.) It may count a `*` that is not an alias (one after a space in a comment or inside a
/// quoted scalar), which matters only past the limit.
public enum YAMLAliasLimit {
    /// Plans and kubeconfigs need no aliases; a few are allowed for hand-written files.
    public static let maximum = 32

    /// The line and column (1-based) of the first `*` beyond ``maximum`` that may start an
    /// alias, or nil when there are at most ``maximum``.
    public static func firstExcess(in text: String) -> (line: Int, column: Int)? {
        var count = 0
        var line = 1
        var column = 1
        var previous: UInt8?
        for byte in text.utf8 {
            if byte == UInt8(ascii: "*"), previous.map(mayPrecedeAlias) ?? true {
                count += 1
                if count > maximum { return (line, column) }
            }
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
            previous = byte
        }
        return nil
    }

    private static func mayPrecedeAlias(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x00...0x20, 0x7F...0xFF: true   // controls, blanks, line breaks, and UTF-8 (NEL, LS, PS, BOM)
        case UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ","),
             UInt8(ascii: "?"), UInt8(ascii: ":"): true
        default: false
        }
    }
}
