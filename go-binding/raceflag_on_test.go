//go:build race

package mapcore

// raceEnabled: the race detector is on. It makes sync.Pool drop items at
// random, so pooled paths allocate now and then.
const raceEnabled = true
