package kernel

import "strconv"

// IRQL is a processor's interrupt request level (x64 values, REFERENCE §4.5).
type IRQL int8

// IRQL values (REFERENCE §4.5, x64). Device levels are 3–11.
const (
	PASSIVE_LEVEL  IRQL = 0
	APC_LEVEL      IRQL = 1
	DISPATCH_LEVEL IRQL = 2
	CMCI_LEVEL     IRQL = 5
	SYNCH_LEVEL    IRQL = 12
	CLOCK_LEVEL    IRQL = 13
	IPI_LEVEL      IRQL = 14
	POWER_LEVEL    IRQL = 14
	PROFILE_LEVEL  IRQL = 15
	HIGH_LEVEL     IRQL = 15
	// MinDIRQL and MaxDIRQL bound device interrupt levels.
	MinDIRQL IRQL = 3
	MaxDIRQL IRQL = 11
)

func (l IRQL) String() string {
	switch l {
	case PASSIVE_LEVEL:
		return "PASSIVE_LEVEL"
	case APC_LEVEL:
		return "APC_LEVEL"
	case DISPATCH_LEVEL:
		return "DISPATCH_LEVEL"
	case SYNCH_LEVEL:
		return "SYNCH_LEVEL"
	case CLOCK_LEVEL:
		return "CLOCK_LEVEL"
	case IPI_LEVEL:
		return "IPI_LEVEL"
	case HIGH_LEVEL:
		return "HIGH_LEVEL"
	}
	if l >= MinDIRQL && l <= MaxDIRQL {
		return "DIRQL" + strconv.Itoa(int(l))
	}
	return "IRQL(" + strconv.Itoa(int(l)) + ")"
}
