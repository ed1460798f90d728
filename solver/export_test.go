package solver

// SetAssignMaxShapes sets how many shapes the assignment relaxation takes
// before it coarsens them, until the returned function restores it.
func SetAssignMaxShapes(n int) (restore func()) {
	old := assignMaxShapes
	assignMaxShapes = n
	return func() { assignMaxShapes = old }
}

// SetAssignRounds sets the assignment relaxation's column generation
// rounds, until the returned function restores it.
func SetAssignRounds(n int) (restore func()) {
	old := assignRounds
	assignRounds = n
	return func() { assignRounds = old }
}

// ObserveAssignmentBounds calls f with every assignment bound the solver
// computes (and whether its shapes were coarsened) until the returned
// function restores it; meanwhile the bound is computed even where the
// cone LP's makes it pointless.
func ObserveAssignmentBounds(f func(coarse bool, bound float64)) (restore func()) {
	old, oldAlways := assignBoundObserved, assignBoundAlways
	assignBoundObserved, assignBoundAlways = f, true
	return func() { assignBoundObserved, assignBoundAlways = old, oldAlways }
}

// SetPatternSizes sets how many pods a node may hold for the lower bound
// to price it by whole-pod patterns (small), and up to how many when it
// tries again on the types its solution uses (wider), which it then does
// on every instance, until the returned function restores them.
func SetPatternSizes(small, wider int) (restore func()) {
	oldS, oldW, oldG, oldSh := smallK, widerK, widerGap, widerShare
	smallK, widerK, widerGap, widerShare = small, wider, 0, 0
	return func() { smallK, widerK, widerGap, widerShare = oldS, oldW, oldG, oldSh }
}

// WiderRuns is how many lower bounds so far were priced again with wider
// whole-pod patterns.
func WiderRuns() int64 { return widerRuns.Load() }

// SetRepackTries sets how many nodes per class the solver's last phase
// tries to replace by cheaper new ones (0: none), until the returned
// function restores it.
func SetRepackTries(n int) (restore func()) {
	old := repackTries
	repackTries = n
	return func() { repackTries = old }
}

// SetRepackHoods sets how many neighbourhoods of several nodes per class
// the solver's last phase tries to repack together (0: none), until the
// returned function restores it.
func SetRepackHoods(n int) (restore func()) {
	old := repackHoods
	repackHoods = n
	return func() { repackHoods = old }
}

// SetRepackToBound turns the solver's repack onto the lower bound's type
// mix (repackClassToBound) on or off; restore undoes it.
func SetRepackToBound(on bool) (restore func()) {
	old := repackToBound
	repackToBound = on
	return func() { repackToBound = old }
}

// SetRelaxMaxTypeRows sets up to how many type rows the assignment
// relaxation is solved whole by decomposition (relaxAssignment) rather
// than by the shape-row master, until the returned function restores it.
func SetRelaxMaxTypeRows(n int) (restore func()) {
	old := relaxMaxTypeRows
	relaxMaxTypeRows = n
	return func() { relaxMaxTypeRows = old }
}
