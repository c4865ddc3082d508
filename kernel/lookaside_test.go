package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.14: freed entries are cached up to the list's depth and
// handed out again; past the depth they go back to pool; deleting the list
// frees what it caches, so a driver that frees every entry and deletes its
// list leaves nothing behind.
func TestLookasideCachesAndDeleteFrees(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	var l kernel.NPAGED_LOOKASIDE_LIST
	var first, again *kernel.PoolBlock
	m.PsCreateSystemThread("driver", 8, func() {
		m.ExInitializeNPagedLookasideList(&l, "ctx", 64, "Ctx ")
		var got []*kernel.PoolBlock
		for range 6 {
			got = append(got, m.ExAllocateFromNPagedLookasideList(&l))
		}
		first = got[0]
		for _, b := range got {
			m.ExFreeToNPagedLookasideList(&l, b)
		}
		assert.Equal(t, kernel.LookasideDepth, l.Cached(), "the depth bounds the cache")
		assert.True(t, got[4].Freed(), "an entry past the depth goes back to pool")
		again = m.ExAllocateFromNPagedLookasideList(&l)
		assert.False(t, again.Freed(), "a cached entry is live memory")
		m.ExFreeToNPagedLookasideList(&l, again)
		m.ExDeleteNPagedLookasideList(&l)
	})
	out := m.Run()
	require.NoError(t, out.Err, m.trace.String())
	assert.Contains(t, m.trace.String(), "lookaside-alloc", "an allocation came from the cache")
	assert.True(t, first.Freed(), "deleting the list freed the cached entries")
	assert.Equal(t, 0, l.Cached())
}

// REFERENCE §4.14: misuse of a lookaside list. An entry freed to a list
// already deleted is cached there and never freed (a leak at the end); a
// second delete unlinks the list from the system's list again (0x139 P1=3);
// a call after the storage holding the list head was freed is a use after
// free (0xD5); a call on a list never initialised goes through NULL
// routines (0x7E); above DISPATCH_LEVEL is 0xA.
func TestLookasideMisuse(t *testing.T) {
	cases := []struct {
		name string
		body func(m *machine, l *kernel.NPAGED_LOOKASIDE_LIST)
		code uint32
		p1   uint64
	}{
		{"deleted twice", func(m *machine, l *kernel.NPAGED_LOOKASIDE_LIST) {
			m.ExDeleteNPagedLookasideList(l)
			m.ExDeleteNPagedLookasideList(l)
		}, kernel.KERNEL_SECURITY_CHECK_FAILURE, kernel.FAST_FAIL_CORRUPT_LIST_ENTRY},
		{"head freed", func(m *machine, l *kernel.NPAGED_LOOKASIDE_LIST) {
			b := m.ExAllocateFromNPagedLookasideList(l)
			m.ExDeleteNPagedLookasideList(l)
			m.ExFreePool(l.Block)
			m.ExFreeToNPagedLookasideList(l, b)
		}, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 1},
		{"never initialised", func(m *machine, _ *kernel.NPAGED_LOOKASIDE_LIST) {
			var raw kernel.NPAGED_LOOKASIDE_LIST
			m.ExAllocateFromNPagedLookasideList(&raw)
		}, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, uint64(kernel.STATUS_ACCESS_VIOLATION)},
		{"above DISPATCH_LEVEL", func(m *machine, l *kernel.NPAGED_LOOKASIDE_LIST) {
			m.KeRaiseIrql(kernel.IRQL(5))
			m.ExAllocateFromNPagedLookasideList(l)
		}, kernel.IRQL_NOT_LESS_OR_EQUAL, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t, oneCPU(), nil)
			m.PsCreateSystemThread("driver", 8, func() {
				l := &kernel.NPAGED_LOOKASIDE_LIST{Block: m.ExAllocatePoolWithTag(kernel.NonPagedPool, 128, "DevX")}
				m.ExInitializeNPagedLookasideList(l, "ctx", 64, "Ctx ")
				c.body(m, l)
			})
			var bc *kernel.BugCheck
			require.ErrorAs(t, m.Run().Err, &bc, m.trace.String())
			assert.Equal(t, c.code, bc.Code, bc.Error())
			if c.p1 != 0 {
				assert.Equal(t, c.p1, bc.Params[0], bc.Error())
			}
		})
	}
}

// REFERENCE §4.14: an entry freed to a deleted list is pushed on its S-list
// as before and never freed: the pool block is reported as a leak.
func TestLookasideFreeAfterDeleteLeaks(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	var l kernel.NPAGED_LOOKASIDE_LIST
	m.PsCreateSystemThread("driver", 8, func() {
		m.ExInitializeNPagedLookasideList(&l, "ctx", 64, "Ctx ")
		b := m.ExAllocateFromNPagedLookasideList(&l)
		m.ExDeleteNPagedLookasideList(&l)
		m.ExFreeToNPagedLookasideList(&l, b)
	})
	var leak *kernel.Leak
	require.ErrorAs(t, m.Run().Err, &leak, m.trace.String())
	assert.Contains(t, leak.Error(), `tag "Ctx " (64 bytes) never freed`)
	assert.Contains(t, leak.Error(), "; freed to lookaside list ctx after ExDeleteNPagedLookasideList deleted it")
}

// REFERENCE §4.14: a list never deleted leaks the entries it caches, and
// the report says so.
func TestLookasideNeverDeletedLeaks(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	var l kernel.NPAGED_LOOKASIDE_LIST
	m.PsCreateSystemThread("driver", 8, func() {
		m.ExInitializeNPagedLookasideList(&l, "ctx", 64, "Ctx ")
		m.ExFreeToNPagedLookasideList(&l, m.ExAllocateFromNPagedLookasideList(&l))
	})
	var leak *kernel.Leak
	require.ErrorAs(t, m.Run().Err, &leak, m.trace.String())
	assert.Contains(t, leak.Error(), "a free entry of lookaside list ctx, never deleted (ExDeleteNPagedLookasideList frees them)")
}
