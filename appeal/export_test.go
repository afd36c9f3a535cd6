package appeal

// OnClaimed sets what hears each claim of e before it fires, for the
// test that kills an engine between the two.
func OnClaimed(e *Engine, f func(n int)) { e.claimed = f }
