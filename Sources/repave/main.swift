// The `repave` executable: everything lives in RepaveCommands, so tests and `kubectl-repave`
// share one entry point.
import RepaveCommands

await RepaveMain.main()
