package cli

// The built-in scenario set: model's own scenarios, plus the suite of
// other people's bugs (model/sct) and the real bug reports, registered by
// importing their packages. model itself may not import them (they import
// model); the CLI and bench may.
import (
	_ "github.com/wqsim/wqsim/model/reports"
	_ "github.com/wqsim/wqsim/model/sct"
)
