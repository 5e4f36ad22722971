//go:build race

package suite

// raceDetector: this test binary, the harness's side of every spec, runs
// under the race detector, several times slower than the runner's.
const raceDetector = true
