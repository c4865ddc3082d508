package model

// SetStepEachEvent turns stepEachEvent on or off for a test.
func SetStepEachEvent(on bool) { stepEachEvent = on }
