// Journal: the crash-safe, checksummed, fsynced run journal. Built by the engine issue; this
// module exists now so that the layers of DESIGN.md are visible in Package.swift from the start.
