package kernel

import "fmt"

// KDEVICE_QUEUE is a device queue (REFERENCE §1.12): the IRPs waiting for a
// busy device, in arrival order or sorted by key, and the device's Busy
// flag. The zero value is an idle, empty queue, as KeInitializeDeviceQueue
// leaves one. Windows links a KDEVICE_QUEUE_ENTRY inside each IRP; here the
// IRP itself is the entry. Each routine takes the queue's own spin lock,
// so the model runs each as one step.
type KDEVICE_QUEUE struct {
	Name    string
	Busy    bool
	entries []deviceQueueEntry
}

type deviceQueueEntry struct {
	irp *IRP
	key uint32
}

// Len returns the number of queued IRPs (for assertions).
func (q *KDEVICE_QUEUE) Len() int { return len(q.entries) }

// KeInitializeDeviceQueue makes q an idle, empty queue.
// IRQL: PASSIVE_LEVEL as Microsoft documents; the model does not check it (REFERENCE §1.12).
func (k *Kernel) KeInitializeDeviceQueue(q *KDEVICE_QUEUE) {
	k.tick()
	q.Busy, q.entries = false, q.entries[:0]
}

// KeInsertDeviceQueue queues irp at the tail and returns true if the device
// is busy; otherwise it marks the device busy and returns false, and the
// caller starts the IRP itself. The caller must be at DISPATCH_LEVEL
// (Verifier 0xC4 P1=0x40 otherwise, as for the spin lock it takes).
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §1.12).
func (k *Kernel) KeInsertDeviceQueue(q *KDEVICE_QUEUE, irp *IRP) bool {
	x := k.devQueueCall("KeInsertDeviceQueue", q, irp)
	if !q.Busy {
		q.Busy = true
		k.emit(x, KindIRP, WhatDeviceQueueBusy, irp.name, 0, 0)
		return false
	}
	q.entries = append(q.entries, deviceQueueEntry{irp: irp})
	k.emit(x, KindIRP, WhatDeviceQueueInsert, irp.name, int64(len(q.entries)), 0)
	return true
}

// KeInsertByKeyDeviceQueue is KeInsertDeviceQueue for a queue sorted by
// key: a busy device's irp goes after every entry whose key is ≤ key.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §1.12).
func (k *Kernel) KeInsertByKeyDeviceQueue(q *KDEVICE_QUEUE, irp *IRP, key uint32) bool {
	x := k.devQueueCall("KeInsertByKeyDeviceQueue", q, irp)
	if !q.Busy {
		q.Busy = true
		k.emit(x, KindIRP, WhatDeviceQueueBusy, irp.name, int64(key), 0)
		return false
	}
	i := len(q.entries)
	for j, e := range q.entries {
		if e.key > key {
			i = j
			break
		}
	}
	q.entries = append(q.entries, deviceQueueEntry{})
	copy(q.entries[i+1:], q.entries[i:])
	q.entries[i] = deviceQueueEntry{irp: irp, key: key}
	k.emit(x, KindIRP, WhatDeviceQueueInsert, irp.name, int64(len(q.entries)), int64(key))
	return true
}

// KeRemoveDeviceQueue removes and returns the IRP at the head of the queue
// of a busy device; when the queue is empty it marks the device idle and
// returns nil. (Windows asserts the device is busy only in checked
// builds; an idle device's queue is empty, so the call returns nil.)
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §1.12).
func (k *Kernel) KeRemoveDeviceQueue(q *KDEVICE_QUEUE) *IRP {
	x := k.devQueueCall("KeRemoveDeviceQueue", q, nil)
	return k.removeDeviceQueueAt(x, q, 0)
}

// KeRemoveByKeyDeviceQueue removes the first IRP whose key is ≥ key, or the
// head when none is; like KeRemoveDeviceQueue it marks an empty queue's
// device idle and returns nil.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §1.12).
func (k *Kernel) KeRemoveByKeyDeviceQueue(q *KDEVICE_QUEUE, key uint32) *IRP {
	x := k.devQueueCall("KeRemoveByKeyDeviceQueue", q, nil)
	i := 0
	for j, e := range q.entries {
		if e.key >= key {
			i = j
			break
		}
	}
	return k.removeDeviceQueueAt(x, q, i)
}

func (k *Kernel) removeDeviceQueueAt(x *exec, q *KDEVICE_QUEUE, i int) *IRP {
	if len(q.entries) == 0 {
		q.Busy = false
		k.emit(x, KindIRP, WhatDeviceQueueIdle, q.Name, 0, 0)
		return nil
	}
	irp := q.entries[i].irp
	q.entries = append(q.entries[:i], q.entries[i+1:]...)
	k.emit(x, KindIRP, WhatDeviceQueueRemove, irp.name, int64(len(q.entries)), 0)
	return irp
}

// KeRemoveEntryDeviceQueue removes irp from q if it is queued there and
// reports whether it was (a cancel routine's test for an IRP that has not
// reached StartIo yet).
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §1.12).
func (k *Kernel) KeRemoveEntryDeviceQueue(q *KDEVICE_QUEUE, irp *IRP) bool {
	x := k.enter("KeRemoveEntryDeviceQueue")
	k.checkIrqlAtMost(x, "KeRemoveEntryDeviceQueue", DISPATCH_LEVEL)
	for i, e := range q.entries {
		if e.irp == irp {
			q.entries = append(q.entries[:i], q.entries[i+1:]...)
			k.emit(x, KindIRP, WhatDeviceQueueRemove, irp.name, int64(len(q.entries)), 1)
			return true
		}
	}
	return false
}

// devQueueCall enters a device-queue routine that requires DISPATCH_LEVEL.
func (k *Kernel) devQueueCall(api string, q *KDEVICE_QUEUE, irp *IRP) *exec {
	x := k.enter(api)
	if x.irql != DISPATCH_LEVEL {
		k.verifierOr0A(x, api, 0x40, fmt.Sprintf("%s at %v, not DISPATCH_LEVEL", api, x.irql))
	}
	if irp != nil {
		k.checkIrpAlive(x, irp, api, "queued")
	}
	return x
}
