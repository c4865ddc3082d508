package kernel_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden trace files under testdata/")

const goldenHeader = `# Golden trace. Columns: virtual time (s) | processor | IRQL | actor
# (thread, dpc/cpuN, isr/cpuN) | what happened | object | two kind-specific
# numbers (priority, status, IRQL, timeout...). Regenerate with
#   go test ./kernel -run Golden -rewrite
# and review the diff.
`

// golden runs a scripted scenario and compares its text trace with
// testdata/<name>.trace. Each scenario is run twice and the hashes compared.
func golden(t *testing.T, name string, cfg kernel.Config, script func(k *kernel.Kernel)) {
	t.Helper()
	var first uint64
	for run := 0; run < 2; run++ {
		m := newMachine(t, cfg, nil)
		script(m.Kernel)
		out := m.Kernel.Run()
		got := goldenHeader + "# outcome: " + outcomeText(out) + "\n" + m.trace.String()
		if run == 0 {
			first = out.Hash
		} else {
			assert.Equal(t, first, out.Hash, "same scenario, same trace hash")
			continue
		}
		path := filepath.Join("testdata", name+".trace")
		if *rewrite {
			require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			continue
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "missing golden file; run with -rewrite")
		assert.Equal(t, string(want), got, "trace differs from %s; if intended, rerun with -rewrite and review the diff", path)
	}
}

func outcomeText(o des.Outcome) string {
	if o.Err == nil {
		return "ok"
	}
	return o.Err.Error()
}

func TestGoldenEventPingPong(t *testing.T) {
	golden(t, "pingpong", oneCPU(), func(k *kernel.Kernel) {
		ping := k.KeInitializeEvent("ping", kernel.SynchronizationEvent, false)
		pong := k.KeInitializeEvent("pong", kernel.SynchronizationEvent, false)
		k.PsCreateSystemThread("a", 8, func() {
			for i := 0; i < 2; i++ {
				k.KeSetEvent(ping, kernel.EVENT_INCREMENT, false)
				k.KeWaitForSingleObject(pong, kernel.Infinite)
			}
		})
		k.PsCreateSystemThread("b", 8, func() {
			for i := 0; i < 2; i++ {
				k.KeWaitForSingleObject(ping, kernel.Infinite)
				k.KeSetEvent(pong, kernel.EVENT_INCREMENT, false)
			}
		})
	})
}

func TestGoldenDispatchLevelDefersPreemptionAndDPC(t *testing.T) {
	golden(t, "dispatch_defers", oneCPU(), func(k *kernel.Kernel) {
		ev := k.KeInitializeEvent("wake", kernel.NotificationEvent, false)
		dpc := k.KeInitializeDpc("d", func(*kernel.KDPC, any, any, any) {}, nil)
		k.PsCreateSystemThread("high", 20, func() { k.KeWaitForSingleObject(ev, kernel.Infinite) })
		k.PsCreateSystemThread("low", 8, func() {
			l := k.KeInitializeSpinLock("L")
			old := k.KeAcquireSpinLock(l)
			k.KeSetEvent(ev, 0, false)
			k.KeInsertQueueDpc(dpc, nil, nil)
			k.Compute(50 * des.Microsecond)
			k.KeReleaseSpinLock(l, old)
		})
	})
}

func TestGoldenDoubleCompletion(t *testing.T) {
	golden(t, "double_completion", kernel.DefaultConfig(), func(k *kernel.Kernel) {
		irp := k.IoAllocateIrp("read")
		complete := func() {
			irp.IoStatus.Status = kernel.STATUS_SUCCESS
			k.IoCompleteRequest(irp, kernel.IO_DISK_INCREMENT)
		}
		k.PsCreateSystemThread("dispatch", 8, complete)
		k.PsCreateSystemThread("dpc-path", 8, func() { k.Compute(5 * des.Microsecond); complete() })
	})
}
