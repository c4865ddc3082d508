package kernel_test

import (
	"errors"
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Driver code is ordinary Go calling NT-named routines on a simulated
// kernel; misuse ends the run with the real bug check at the faulting call.
func ExampleKernel() {
	sim := des.New(des.Config{})
	defer sim.Close()
	k := kernel.MustNew(sim, kernel.DefaultConfig())
	irp := k.IoAllocateIrp("read")
	done := k.KeInitializeEvent("done", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("dispatch", 8, func() {
		irp.IoStatus.Status = kernel.STATUS_SUCCESS
		k.IoCompleteRequest(irp, kernel.IO_DISK_INCREMENT)
		k.KeSetEvent(done, kernel.EVENT_INCREMENT, false)
	})
	k.PsCreateSystemThread("dpc-path", 8, func() {
		k.KeWaitForSingleObject(done, kernel.Infinite)
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT) // a second owner
	})
	out := k.Run()
	var bc *kernel.BugCheck
	if errors.As(out.Err, &bc) {
		fmt.Printf("0x%X %s in %s by %s\n", bc.Code, bc.Name, bc.API, bc.Actor)
	}
	// Output: 0x44 MULTIPLE_IRP_COMPLETE_REQUESTS in IoCompleteRequest by dpc-path
}
