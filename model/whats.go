package model

import "github.com/wqsim/wqsim/des"

// Sub-kinds of the records scenarios add to a trace (the What field).
const (
	WhatDrain des.What = "drain"
	WhatMark  des.What = "mark"
)
