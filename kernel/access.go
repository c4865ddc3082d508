package kernel

import "github.com/wqsim/wqsim/des"

// Access reporting: when the Sim was built with des.Config.WantAccess, a
// thread's scheduling point says what the thread is about to touch
// (des.Point.Touch) and a choice among ready threads says what each
// candidate will touch next (des.Point.Touches), so that strategies such as
// POS and SURW can tell racing operations apart. With WantAccess off every
// helper here is a single untaken branch: the hot path does no extra work.
//
// Objects made by the kernel's constructors are numbered when they are
// made, so the same object has the same number in every schedule of a
// scenario whose setup creates it in a fixed order (strategies compare the
// natural run's numbers with later runs'); objects built as literals are
// numbered when first reported. The number is kept in the object (aid), so
// an object must not be shared between kernels.

// objID returns the access number of the object whose aid field is id,
// assigning the next one on first use; nil (no object) is 0.
func (k *Kernel) objID(id *int32) int32 {
	if id == nil {
		return 0
	}
	if *id == 0 {
		k.objSeq++
		*id = k.objSeq
	}
	return *id
}

// numberAtBirth numbers a new object when access reports are on.
func (k *Kernel) numberAtBirth(id *int32) {
	if k.wantAccess {
		k.objID(id)
	}
}

// enterOn is enter for a routine that touches one object: while the caller
// sits at the call's scheduling point, its next operation is op on the
// object numbered by id.
func (k *Kernel) enterOn(api string, id *int32, op des.AccessOp) *exec {
	x := k.cur(api)
	k.pointOn(x, k.cfg.Costs.Call, id, op)
	return x
}

// pointOn is point with the pending operation reported while it waits.
func (k *Kernel) pointOn(x *exec, cost des.Duration, id *int32, op des.AccessOp) {
	if !k.wantAccess {
		k.point(x, cost)
		return
	}
	x.next = des.Access{Obj: k.objID(id), Op: op}
	k.point(x, cost)
	x.next = des.Access{}
}

// readyTouches lists what each ready candidate will touch next, or nil when
// nobody asked.
func (k *Kernel) readyTouches(cands []*Thread) []des.Access {
	if !k.wantAccess {
		return nil
	}
	ts := k.touchScratch[:0]
	for _, t := range cands {
		ts = append(ts, t.next)
	}
	k.touchScratch = ts
	return ts
}

// waitID numbers the first object of a wait (a multi-object wait reports
// its first object), or nothing for a plain delay.
func waitID(objs []Waitable) *int32 {
	if len(objs) == 0 {
		return nil
	}
	return &objs[0].hdr().aid
}
