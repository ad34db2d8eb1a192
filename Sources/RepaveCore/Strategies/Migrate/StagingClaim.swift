/// The claim migrate copies into, on the new class, before it takes the claim's name.
public enum StagingClaim {
    /// `<claim, shortened>-repave-<the run id's first 8 characters>`: at most 253 characters (a
    /// claim's limit), ending in a letter or digit, so that two runs on one claim never share one.
    public static func name(claim: String, runID: String) -> String {
        CopyPod.name(claim, suffix: "-repave-" + runID.prefix(8))
    }
}
