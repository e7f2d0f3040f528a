package main

// Placeholder until the Go binding compiles: no mapcore contestant.
func mapcoreContestants() []contestant { return nil }
