//go:build !race

package mapcore

const raceEnabled = false
